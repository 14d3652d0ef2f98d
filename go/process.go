package vge

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/vsock-guest-exec/vge-go/wire"
)

// Process is a running execution in the guest: one started by Cmd.Start, or a detached job followed with
// Attach. Its output must be read (Stdout, Stderr) for it to make progress: credit goes back to the agent
// only as it is read, so a slow reader stalls only its own process.
type Process struct {
	g       *Guest
	id      uint32
	win     *recvWindow
	stdout  *inbox
	stderr  *inbox
	in      *sendWindow
	started chan struct{}
	exited  chan struct{}

	mu       sync.Mutex
	startErr error
	pid      uint32
	job      uint32
	tag      string
	replay   *wire.AttachedBody
	result   ExitResult
	err      error
	stdinEOF bool
	done     bool
}

func newProcess(g *Guest) *Process {
	p := &Process{g: g, started: make(chan struct{}), exited: make(chan struct{})}
	p.win = &recvWindow{g: g, max: wire.DefaultWindow}
	p.stdout, p.stderr = newInbox(p.win), newInbox(p.win)
	p.in = newSendWindow(g.inputWindow())
	return p
}

func (p *Process) register() error {
	id, err := p.g.register(p)
	p.id, p.win.id = id, id
	return err
}

func (p *Process) frame(f wire.Frame) error {
	switch f.Type {
	case wire.Started, wire.Attached:
		p.mu.Lock()
		defer p.mu.Unlock()
		select {
		case <-p.started:
			return wire.Protof("a second %v for id %d", f.Type, f.ID)
		default:
		}
		if f.Type == wire.Started {
			s, err := wire.ValidateStarted(f)
			if err != nil {
				return err
			}
			p.pid, p.job, p.tag = s.PID, s.Job, s.Tag
		} else {
			a, err := wire.ValidateAttached(f)
			if err != nil {
				return err
			}
			p.pid, p.job, p.tag, p.replay = a.PID, a.Job, a.Tag, &a
			if a.Stdin != nil {
				// stdin credit belongs to the job: a follower may send only what earlier ones left of it.
				p.in.reset(*a.Stdin)
			}
			p.stdout.total, p.stderr.total = a.Stdout.From, a.Stderr.From
		}
		close(p.started)
	case wire.Stdout, wire.Stderr:
		if err := p.win.receive(len(f.Payload)); err != nil {
			return err
		}
		if f.Type == wire.Stdout {
			p.stdout.push(f)
		} else {
			p.stderr.push(f)
		}
	case wire.Window:
		n, err := wire.DecodeWindow(f)
		if err != nil {
			return err
		}
		return p.in.give(n)
	case wire.Exit:
		r, err := wire.ValidateExit(f)
		if err != nil {
			return err
		}
		p.finish(r, nil)
	case wire.Detached:
		d, err := wire.ValidateDetached(f)
		if err != nil {
			return err
		}
		if d.Errno == "" {
			d.Errno, d.Message = "ENOENT", "the agent follows no execution under this id"
		}
		p.finish(ExitResult{}, &RemoteError{Op: "attach", Path: p.tag, Errno: d.Errno, Message: d.Message})
	default:
		return wire.Protof("%v frame for an execution", f.Type)
	}
	return nil
}

// finish ends the execution: EXIT (err nil), DETACHED, or a local end (the connection, the context).
func (p *Process) finish(r ExitResult, err error) {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done, p.result, p.err = true, r, err
	select {
	case <-p.started:
	default:
		p.startErr = err
		close(p.started)
	}
	p.mu.Unlock()
	p.g.release(p.id)
	p.stdout.end(err)
	p.stderr.end(err)
	p.in.close(ErrStdinClosed)
	close(p.exited)
}

func (p *Process) fail(err error) { p.finish(ExitResult{}, err) }

// PID is the process id in the guest (0 until started).
func (p *Process) PID() int { p.mu.Lock(); defer p.mu.Unlock(); return int(p.pid) }

// Job is the agent's number for a detached execution (0 otherwise), Tag its tag.
func (p *Process) Job() uint32 { p.mu.Lock(); defer p.mu.Unlock(); return p.job }

// Tag is the detached execution's tag, if any.
func (p *Process) Tag() string { p.mu.Lock(); defer p.mu.Unlock(); return p.tag }

// Replay is where an Attach's replay started per stream (nil for an execution this host started).
func (p *Process) Replay() (stdout, stderr Replay, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.replay == nil {
		return Replay{}, Replay{}, false
	}
	return p.replay.Stdout, p.replay.Stderr, true
}

// Offsets is how far each stream has been read, counted from the job's first byte: give it to Attach
// to continue where this follower stopped.
func (p *Process) Offsets() wire.Offsets {
	return wire.Offsets{Stdout: p.stdout.read(), Stderr: p.stderr.read()}
}

// Stdout is the execution's standard output (with a PTY or Merge: everything).
func (p *Process) Stdout() io.ReadCloser { return p.stdout }

// Stderr is the execution's standard error.
func (p *Process) Stderr() io.ReadCloser { return p.stderr }

// Write sends stdin within the agent's credit; it blocks while there is none.
func (p *Process) Write(b []byte) (int, error) {
	return p.writeCtx(context.Background(), b)
}

func (p *Process) writeCtx(ctx context.Context, b []byte) (int, error) {
	done := 0
	for len(b) > 0 {
		n, err := p.in.take(ctx, min(len(b), wire.Chunk), false)
		if err != nil {
			return done, p.stdinErr(err)
		}
		if err := p.g.send(wire.Stdin, p.id, b[:n]); err != nil {
			return done, err
		}
		b, done = b[n:], done+n
	}
	return done, nil
}

func (p *Process) stdinErr(err error) error {
	if err == ErrStdinClosed {
		return errorf("EPIPE", "stdin: the process has exited", nil)
	}
	return err
}

// CloseStdin half-closes stdin (STDIN_EOF): the process reads EOF.
func (p *Process) CloseStdin() error {
	p.mu.Lock()
	if p.stdinEOF || p.done {
		p.mu.Unlock()
		return nil
	}
	p.stdinEOF = true
	p.mu.Unlock()
	return p.g.send(wire.StdinEOF, p.id, nil)
}

// Signal sends a signal ("SIGTERM", "TERM", "term") to the execution's whole process group.
func (p *Process) Signal(sig string) error {
	name, _, ok := wire.LookupSignal(sig)
	if !ok {
		return errorf("EINVAL", fmt.Sprintf("unknown signal %q", sig), nil)
	}
	if p.isDone() {
		return nil
	}
	return p.g.sendJSON(wire.Signal, p.id, wire.SignalBody{Signal: name})
}

// Kill sends SIGKILL to the process group.
func (p *Process) Kill() error { return p.Signal("SIGKILL") }

// Resize sets the PTY's window size.
func (p *Process) Resize(cols, rows int) error {
	if err := wire.CheckSize(uint32(cols), uint32(rows)); err != nil || cols > 65535 || rows > 65535 {
		return errorf("EINVAL", fmt.Sprintf("terminal size %dx%d: cols and rows must be 1..65535", cols, rows), nil)
	}
	if p.isDone() {
		return nil
	}
	return p.g.sendJSON(wire.Resize, p.id, wire.ResizeBody{Cols: uint32(cols), Rows: uint32(rows)})
}

func (p *Process) isDone() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.done }

// waitStarted waits for STARTED (or ATTACHED); an execution that could not start returns its EXIT.
func (p *Process) waitStarted(ctx context.Context) error {
	select {
	case <-p.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.startErr != nil {
		return p.startErr
	}
	if p.done && p.pid == 0 && p.result.Status == "error" {
		return &ExitError{Result: p.result}
	}
	return nil
}

// Wait waits for the EXIT. The error is not nil only when no result came: the connection failed (an
// *Error), the job was taken over (a *RemoteError EBUSY), or ctx ended.
func (p *Process) Wait(ctx context.Context) (ExitResult, error) {
	select {
	case <-p.exited:
	case <-ctx.Done():
		return ExitResult{}, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.result, p.err
}

// Exited is closed once the execution has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }
