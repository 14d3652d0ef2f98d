package vge

import "io"

// StdinPipe returns a pipe to the process's stdin; Close half-closes it.
func (c *Cmd) StdinPipe() (io.WriteCloser, error) {
	if c.Process != nil || c.Stdin != nil {
		return nil, errorf("EINVAL", "StdinPipe: after Start, or with Stdin set", nil)
	}
	c.stdinPipe = true
	return stdinPipe{c}, nil
}

type stdinPipe struct{ c *Cmd }

func (s stdinPipe) Write(b []byte) (int, error) {
	if s.c.Process == nil {
		return 0, errorf("EINVAL", "stdin: the command has not started", nil)
	}
	return s.c.Process.writeCtx(s.c.ctx, b)
}

func (s stdinPipe) Close() error {
	if s.c.Process == nil {
		return nil
	}
	return s.c.Process.CloseStdin()
}

// StdoutPipe returns the process's stdout as a reader; read it before Wait. Close drops the rest.
func (c *Cmd) StdoutPipe() (io.ReadCloser, error) {
	if c.Process != nil || c.Stdout != nil {
		return nil, errorf("EINVAL", "StdoutPipe: after Start, or with Stdout set", nil)
	}
	c.stdoutPipe = true
	return &lazyReader{get: func() io.ReadCloser { return c.Process.Stdout() }, c: c}, nil
}

// StderrPipe returns the process's stderr as a reader.
func (c *Cmd) StderrPipe() (io.ReadCloser, error) {
	if c.Process != nil || c.Stderr != nil {
		return nil, errorf("EINVAL", "StderrPipe: after Start, or with Stderr set", nil)
	}
	c.stderrPipe = true
	return &lazyReader{get: func() io.ReadCloser { return c.Process.Stderr() }, c: c}, nil
}

type lazyReader struct {
	get func() io.ReadCloser
	c   *Cmd
}

func (l *lazyReader) Read(b []byte) (int, error) {
	if l.c.Process == nil {
		return 0, errorf("EINVAL", "read before Start", nil)
	}
	return l.get().Read(b)
}

func (l *lazyReader) Close() error {
	if l.c.Process == nil {
		return nil
	}
	return l.get().Close()
}
