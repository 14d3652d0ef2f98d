// An unbounded hand-over between an accept loop and callers of accept(): items wait for takers and takers
// wait for items. Closing rejects the waiting takers; items nobody took are handed to `drop`.

export class AcceptQueue<T> {
  private items: T[] = [];
  private takers: { resolve: (v: T) => void; reject: (e: Error) => void }[] = [];
  private error: Error | undefined;

  constructor(private readonly drop: (item: T) => void = () => {}) {}

  push(item: T): void {
    if (this.error) return this.drop(item);
    const t = this.takers.shift();
    if (t) t.resolve(item);
    else this.items.push(item);
  }

  take(): Promise<T> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve(item);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => this.takers.push({ resolve, reject }));
  }

  close(err: Error): void {
    this.error ??= err;
    for (const t of this.takers.splice(0)) t.reject(this.error);
    for (const i of this.items.splice(0)) this.drop(i);
  }

  get isClosed(): boolean {
    return this.error !== undefined;
  }
}

/** Rejects accept() once a listener is closed; `for await` loops over a listener end on it. */
export class ListenerClosedError extends Error {
  override name = "ListenerClosedError";
  readonly code = "ECLOSED";
}

/** Turns accept() into an async iterator that ends (rather than throws) when the listener closes. */
export async function* acceptAll<T>(accept: () => Promise<T>): AsyncGenerator<T> {
  for (;;) {
    try {
      yield await accept();
    } catch (e) {
      if (e instanceof ListenerClosedError) return;
      throw e;
    }
  }
}
