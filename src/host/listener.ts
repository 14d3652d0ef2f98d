// listen(): wait for guests to dial in. Every connection gets its own hello, concurrently, so one slow or
// wrong peer never holds up the next; a restarted agent simply dials again and is served again.
import { toAddress, type Address } from "./address.ts";
import { Guest, type GuestOptions } from "./guest.ts";
import { AcceptQueue, ListenerClosedError, acceptAll } from "./transports/_queue.ts";
import { listenConns } from "./transports/open.ts";
import type { ConnListener } from "./transports/types.ts";
import { withToken } from "./_auth.ts";

export interface ListenOptions extends Omit<GuestOptions, "name"> {
  /** A connection that failed its hello (an original-format agent, garbage). Default: ignored. */
  onError?: (err: Error, peer: string) => void;
}

export class Listener implements AsyncIterable<Guest> {
  private readonly guests = new AcceptQueue<Guest>((g) => g.close());

  private constructor(
    private readonly conns: ConnListener,
    opts: ListenOptions,
  ) {
    void this.pump(opts);
  }

  static async open(address: string | Address, opts: ListenOptions = {}): Promise<Listener> {
    // The token file is read here, once: every guest that dials in later is checked against the same token.
    const withRead = withToken(opts);
    return new Listener(await listenConns(toAddress(address)), withRead);
  }

  /** The address listened on. */
  get address(): string {
    return this.conns.address;
  }

  /** The next guest that has said hello; rejects with ListenerClosedError once closed. */
  accept(): Promise<Guest> {
    return this.guests.take();
  }

  [Symbol.asyncIterator](): AsyncIterator<Guest> {
    return acceptAll(() => this.accept());
  }

  /** Stops listening. Guests already accepted stay connected. */
  async close(): Promise<void> {
    this.guests.close(new ListenerClosedError(`${this.address}: the listener is closed`));
    await this.conns.close();
  }

  private async pump(opts: ListenOptions): Promise<void> {
    try {
      for await (const { conn, peer } of this.conns) {
        Guest.open(conn, { ...opts, name: `guest ${peer}` }).then(
          (g) => this.guests.push(g),
          (e) => opts.onError?.(e as Error, peer),
        );
      }
    } catch (e) {
      this.guests.close(e as Error);
    }
  }
}

export function listen(address: string | Address, opts: ListenOptions = {}): Promise<Listener> {
  return Listener.open(address, opts);
}
