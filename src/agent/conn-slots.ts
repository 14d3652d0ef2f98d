// The connection slots of listen mode (--max-conns). A connection that has not finished its hello never
// keeps out one that would: at the limit, a connection still in its hello gives its slot to the newcomer,
// as SSH's MaxStartups and nginx's limits keep unauthenticated connections from starving real ones. The
// one dropped is the oldest that has sent nothing at all, else the oldest still in its hello (a host
// between HELLO and AUTH, or trickling): a host that has spoken survives a flood of silent ones for as
// long as there are silent ones to drop. A connection past its hello is never dropped for a new one:
// with every slot held by those, the newcomer is refused (EBUSY).

export interface Slot {
  /** The hello is complete: from now on this connection keeps its slot until it ends. */
  greeted(): void;
  /** The connection has ended. Safe to call more than once, and after an eviction. */
  release(): void;
}

/** A connection as the slots see it. */
export interface Candidate {
  /** Has the host sent anything yet? */
  hasSpoken(): boolean;
  /** Close it: its slot went to a newer connection. */
  evict(): void;
}

export class ConnSlots {
  private used = 0;
  /** Slots still in their hello, oldest first (a Map keeps insertion order), with how to drop each. */
  private readonly inHello = new Map<Slot, Candidate>();

  constructor(readonly max: number) {}

  get inUse(): number {
    return this.used;
  }

  /**
   * A slot for a new connection: a free one, or one still in its hello (see above), whose `evict` is
   * called (it must close that connection). Undefined when every slot is past its hello.
   */
  admit(me: Candidate): Slot | undefined {
    if (this.used >= this.max) {
      const victim = this.victim();
      if (!victim) return undefined;
      const drop = this.inHello.get(victim)!;
      // The slot changes hands here: the evicted connection's release() must not give it back too.
      this.inHello.delete(victim);
      this.used--;
      (victim as OneSlot).handedOver = true;
      drop.evict();
    }
    this.used++;
    const slot = new OneSlot(this);
    this.inHello.set(slot, me);
    return slot;
  }

  private victim(): Slot | undefined {
    let oldest: Slot | undefined;
    for (const [slot, c] of this.inHello) {
      if (!c.hasSpoken()) return slot;
      oldest ??= slot;
    }
    return oldest;
  }

  /** @internal */
  onGreeted(slot: OneSlot): void {
    this.inHello.delete(slot);
  }

  /** @internal */
  onRelease(slot: OneSlot): void {
    this.inHello.delete(slot);
    this.used--;
  }
}

class OneSlot implements Slot {
  handedOver = false;
  private released = false;
  constructor(private readonly slots: ConnSlots) {}

  greeted(): void {
    if (!this.released && !this.handedOver) this.slots.onGreeted(this);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    if (!this.handedOver) this.slots.onRelease(this);
  }
}
