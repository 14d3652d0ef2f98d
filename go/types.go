// Package vge is the host side of vsock-guest-exec's protocol v2 (PROTOCOL.md) in Go: dial or wait for a
// guest agent over AF_VSOCK, a Unix socket or a Firecracker-style multiplexer, then run commands shaped
// like os/exec, copy files and directory trees, follow detached jobs and open TCP streams inside the
// guest, all at once over one connection with per-stream flow control.
//
// Every guest is treated as hostile: every frame is checked (package wire), output beyond the credit the
// host granted fails the connection (EFLOW), and a directory copy from the guest writes nothing outside
// its target.
package vge

import "github.com/vsock-guest-exec/vge-go/wire"

// ExitResult is how an execution ended: Status "exited" (Code), "signaled" or "timeout" (Signal, Signo),
// or "error" (Errno, Message: the program never started).
type ExitResult = wire.ExitResult

// Limits caps one execution: memory bytes, processes and threads, CPUs (PROTOCOL.md §5.2).
type Limits = wire.Limits

// Usage is what an execution used (CPU time, peak memory), when asked for (PROTOCOL.md §5.2).
type Usage = wire.Usage

// Info is the agent's WELCOME: version, capabilities, hostname, kernel, arch, initrd, pid, window.
type Info = wire.WelcomeBody

// JobInfo is one detached execution as List reports it.
type JobInfo = wire.JobInfo

// Replay is where an Attach's replay of a stream starts and how many bytes before it were dropped.
type Replay = wire.Replay

// PTY asks for a pseudo-terminal of Cols × Rows (1..65535), TERM Term (default xterm-256color).
type PTY = wire.PTY

// Offsets are byte positions per stream of a detached execution (Attach's from, Process.Offsets).
type Offsets = wire.Offsets
