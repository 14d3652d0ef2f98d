package vge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vsock-guest-exec/vge-go/wire"
)

// Cmd is a command to run in the guest, shaped like os/exec.Cmd. Set its fields, then Run, Output,
// CombinedOutput, or Start and Wait.
type Cmd struct {
	// Args is the program and its arguments; the program is searched in the guest's PATH.
	Args []string
	// Shell, instead of Args, is a command line for /bin/sh -c.
	Shell string

	// Env sets variables over the agent's environment (or none, with ClearEnv); Unsetenv removes some.
	Env      map[string]string
	Unsetenv []string
	ClearEnv bool
	// Dir is the working directory; User a user name or decimal uid; UID and GID explicit ids.
	Dir  string
	User string
	UID  *uint32
	GID  *uint32

	// Stdin nil: the process reads /dev/null (unless StdinPipe is used). Otherwise it is copied in, then
	// stdin is half-closed.
	Stdin io.Reader
	// Stdout and Stderr nil: the output is read and discarded.
	Stdout io.Writer
	Stderr io.Writer

	// PTY runs the command on a new pseudo-terminal; all output arrives on Stdout.
	PTY *PTY
	// Merge sends stderr into stdout's pipe, in write order.
	Merge bool
	// Timeout makes the agent send KillSignal (default SIGKILL) to the whole process group: status "timeout".
	Timeout    time.Duration
	KillSignal string
	// Detach makes the execution a job that outlives the connection (PROTOCOL.md §5.1).
	Detach *Detach
	// Limits caps memory, processes and CPU for the whole tree (PROTOCOL.md §5.2; an agent without
	// --cgroup refuses with ENOTSUP rather than run unlimited). Usage asks for Result.Usage without limits.
	Limits *Limits
	Usage  bool
	// WaitDelay bounds the wait for the EXIT after ctx is done and SIGKILL was sent (default 5 s).
	WaitDelay time.Duration

	// Process is set by Start.
	Process *Process
	// Result is set by Wait.
	Result ExitResult

	g          *Guest
	ctx        context.Context
	stdinPipe  bool
	stdoutPipe bool
	stderrPipe bool
	copies     sync.WaitGroup
	copyErr    error
	copyMu     sync.Mutex
	waited     bool
}

// Detach asks for a detached execution: Tag names it (1..64 of A-Z a-z 0-9 . _ -), Keep is the bytes of
// output kept per stream for a later Attach (default 1 MiB, at most 64 MiB).
type Detach struct {
	Tag  string
	Keep uint32
}

// Command prepares name with args, as exec.CommandContext does: ctx ending kills the process group.
func (g *Guest) Command(ctx context.Context, name string, arg ...string) *Cmd {
	return &Cmd{Args: append([]string{name}, arg...), g: g, ctx: ctx}
}

// ShellCommand prepares a command line for /bin/sh -c.
func (g *Guest) ShellCommand(ctx context.Context, script string) *Cmd {
	return &Cmd{Shell: script, g: g, ctx: ctx}
}

func (c *Cmd) body() (*wire.ExecBody, error) {
	b := &wire.ExecBody{ClearEnv: c.ClearEnv, Cwd: c.Dir, User: c.User, UID: c.UID, GID: c.GID, PTY: c.PTY, Merge: c.Merge}
	if c.Shell != "" {
		s := c.Shell
		b.Shell = &s
		if len(c.Args) > 0 {
			return nil, errorf("EINVAL", "Cmd: set Args or Shell, not both", nil)
		}
	} else {
		b.Argv = c.Args
	}
	if len(c.Env)+len(c.Unsetenv) > 0 {
		b.Env = map[string]*string{}
		for k, v := range c.Env {
			v := v
			b.Env[k] = &v
		}
		for _, k := range c.Unsetenv {
			b.Env[k] = nil
		}
	}
	if c.Stdin == nil && !c.stdinPipe {
		b.Stdin = "closed"
	}
	if c.Timeout > 0 {
		ms := (c.Timeout + time.Millisecond - 1) / time.Millisecond
		if ms > wire.MaxTimeoutMs {
			return nil, errorf("EINVAL", fmt.Sprintf("Cmd: timeout %v is over the protocol's %d ms", c.Timeout, uint32(wire.MaxTimeoutMs)), nil)
		}
		b.TimeoutMs = uint32(ms)
	}
	b.KillSignal = c.KillSignal
	if c.KillSignal != "" {
		name, _, ok := wire.LookupSignal(c.KillSignal)
		if !ok {
			return nil, errorf("EINVAL", fmt.Sprintf("Cmd: unknown signal %q", c.KillSignal), nil)
		}
		b.KillSignal = name
	}
	if c.Detach != nil {
		b.Detach = &wire.DetachBody{Tag: c.Detach.Tag}
		if c.Detach.Keep > 0 {
			k := c.Detach.Keep
			b.Detach.Keep = &k
		}
	}
	if c.Limits != nil {
		l := *c.Limits
		b.Limits = &l
	}
	b.Usage = c.Usage
	if err := b.Check(); err != nil {
		return nil, errorf("EINVAL", err.Error(), nil)
	}
	return b, nil
}

// Start starts the command and waits until it runs. A program that cannot start returns an *ExitError
// with Status "error" (errno ENOENT for a program not found).
func (c *Cmd) Start() error {
	if c.Process != nil {
		return errorf("EINVAL", "Cmd: already started", nil)
	}
	if c.g == nil {
		return errorf("EINVAL", "Cmd: made without Guest.Command", nil)
	}
	if c.ctx == nil {
		c.ctx = context.Background()
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	body, err := c.body()
	if err != nil {
		return err
	}
	p := newProcess(c.g)
	if err := p.register(); err != nil {
		return err
	}
	c.Process = p
	if err := c.g.sendJSON(wire.Exec, p.id, body); err != nil {
		p.finish(ExitResult{}, err)
		return err
	}
	c.watch()
	if c.Stdin != nil {
		c.copy(func() error {
			_, err := io.Copy(ctxWriter{p, c.ctx}, c.Stdin)
			if err == nil {
				err = p.CloseStdin()
			}
			if errors.Is(err, ErrStdinClosed) {
				err = nil // the process ended without reading all of it, as os/exec ignores EPIPE
			}
			return err
		})
	}
	if !c.stdoutPipe {
		c.drain(p.stdout, c.Stdout)
	}
	if !c.stderrPipe {
		c.drain(p.stderr, c.Stderr)
	}
	return p.waitStarted(c.ctx)
}

type ctxWriter struct {
	p   *Process
	ctx context.Context
}

func (w ctxWriter) Write(b []byte) (int, error) { return w.p.writeCtx(w.ctx, b) }

func (c *Cmd) copy(f func() error) {
	c.copies.Add(1)
	go func() {
		defer c.copies.Done()
		if err := f(); err != nil {
			c.copyMu.Lock()
			if c.copyErr == nil {
				c.copyErr = err
			}
			c.copyMu.Unlock()
		}
	}()
}

func (c *Cmd) drain(in *inbox, w io.Writer) {
	if w == nil {
		w = io.Discard
	}
	c.copy(func() error {
		_, err := io.Copy(w, in)
		if err != nil {
			in.drop()
		}
		return err
	})
}

// watch kills the process group when ctx ends, and gives up on the EXIT after WaitDelay.
func (c *Cmd) watch() {
	p, ctx := c.Process, c.ctx
	if ctx.Done() == nil {
		return
	}
	go func() {
		select {
		case <-p.exited:
			return
		case <-ctx.Done():
		}
		go p.Kill()
		delay := c.WaitDelay
		if delay == 0 {
			delay = 5 * time.Second
		}
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-p.exited:
		case <-t.C:
			p.finish(ExitResult{}, ctx.Err())
		}
	}()
}

// Wait waits for the command to exit and its output to be copied. The error is nil when the command ran
// to an end of any kind (see the ExitResult); it is the connection's *Error, ctx.Err(), or a copy error
// otherwise.
func (c *Cmd) Wait() (ExitResult, error) {
	if c.Process == nil {
		return ExitResult{}, errorf("EINVAL", "Cmd: not started", nil)
	}
	if c.waited {
		return c.Result, errorf("EINVAL", "Cmd: Wait was already called", nil)
	}
	c.waited = true
	r, err := c.Process.Wait(context.Background())
	c.copies.Wait()
	c.Result = r
	if err == nil && c.ctx.Err() != nil && !r.Success() {
		err = c.ctx.Err()
	}
	if err == nil {
		err = c.copyErr
	}
	return r, err
}

// Run starts the command and waits: nil when it exited 0, an *ExitError when it ran and did not.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			c.copies.Wait()
			c.Result, c.waited = ee.Result, true
		}
		return err
	}
	r, err := c.Wait()
	if err != nil {
		return err
	}
	if !r.Success() {
		return &ExitError{Result: r}
	}
	return nil
}

// Output runs the command and returns its stdout; the *ExitError holds stderr when Stderr was not set.
func (c *Cmd) Output() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errorf("EINVAL", "Output: Stdout already set", nil)
	}
	var out, errb bytes.Buffer
	c.Stdout = &out
	captured := c.Stderr == nil
	if captured {
		c.Stderr = &capped{b: &errb, max: 64 << 10}
	}
	err := c.Run()
	var ee *ExitError
	if captured && errors.As(err, &ee) {
		ee.Stderr = errb.Bytes()
	}
	return out.Bytes(), err
}

// CombinedOutput runs the command with stderr merged into stdout (in write order) and returns both.
func (c *Cmd) CombinedOutput() ([]byte, error) {
	if c.Stdout != nil || c.Stderr != nil {
		return nil, errorf("EINVAL", "CombinedOutput: Stdout or Stderr already set", nil)
	}
	var out bytes.Buffer
	c.Stdout = &out
	if c.PTY == nil {
		c.Merge = true
	}
	err := c.Run()
	return out.Bytes(), err
}

// Kill sends a signal to the process group (default SIGKILL).
func (c *Cmd) Kill(sig string) error {
	if c.Process == nil {
		return errorf("EINVAL", "Cmd: not started", nil)
	}
	if sig == "" {
		sig = "SIGKILL"
	}
	return c.Process.Signal(sig)
}

// Resize sets the PTY's size.
func (c *Cmd) Resize(cols, rows int) error {
	if c.Process == nil {
		return errorf("EINVAL", "Cmd: not started", nil)
	}
	return c.Process.Resize(cols, rows)
}

// String shows the command.
func (c *Cmd) String() string {
	if c.Shell != "" {
		return "sh -c " + fmt.Sprintf("%q", c.Shell)
	}
	return fmt.Sprint(c.Args)
}

// capped keeps the first max bytes (Output's stderr for the ExitError), and discards the rest.
type capped struct {
	b   *bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
