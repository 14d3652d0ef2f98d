// vsock-guest-exec host library: run commands in a Linux guest over vsock. Re-exports only.
export { ADDRESS_FORMS, AddressError, CID_ANY, formatAddress, isListenAddress, parseAddress, type Address } from "./address.ts";
export { connect, isTransient, type ConnectOptions } from "./connect.ts";
export { FileError, GuestError, StdinClosedError } from "./errors.ts";
export { describeExit, shellStatus } from "./exit.ts";
export type { FileInfo, GetOptions, PutOptions, RemoteFile } from "./files.ts";
export { Guest, type GuestOptions } from "./guest.ts";
export { sendDisposable, sendPersistent, type LegacyOptions, type PersistentOptions } from "./legacy.ts";
export { Listener, listen, type ListenOptions } from "./listener.ts";
export type { Command, ExecOptions } from "./options.ts";
export { RemoteProcess } from "./process.ts";
export type { RunOptions, RunResult } from "./run.ts";
export type { LocalFile, PutSource } from "./_source.ts";
export { ListenerClosedError } from "./transports/_queue.ts";
export { fcHandshake } from "./transports/firecracker.ts";
export { connectConn as connectRaw, listenConns as listenRaw } from "./transports/open.ts";
export type { Accepted, ConnListener, DialOptions } from "./transports/types.ts";
export type { Conn } from "../transport/stream.ts";
export type { ExitResult, Welcome } from "../protocol/v2/messages.ts";
