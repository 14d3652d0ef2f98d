package vge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Example_provisioning run for real: the agent dials the host's fc-listen socket as it does from an
// initrd, the host sends one command, gets its output and status, closes, and the agent exits 0 so the
// boot goes on.
func TestProvisioningFlow(t *testing.T) {
	ctx := tctx(t)
	l, err := Listen(ctx, "fc-listen:"+filepath.Join(sockDir(t), "v.sock")+":1024", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	agent := startAgent(t, "--unix", l.Addr().ListenPath())
	g, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cmd := g.ShellCommand(ctx, "echo provisioning; echo warn >&2; exit 0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Timeout = 30 * time.Second
	if err := cmd.Run(); err != nil || out.String() != "provisioning\n" || errb.String() != "warn\n" {
		t.Fatalf("%q %q %v", out.String(), errb.String(), err)
	}
	g.Close()
	done := make(chan error, 1)
	go func() { done <- agent.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not exit after the host closed")
	}
	if !errors.Is(g.Err(), ErrClosed) {
		t.Fatal(g.Err())
	}
}

// The everyday paths, many times with varied sizes (bounded in time): stdin through cat, files both ways.
func TestAgentLoops(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	dir := t.TempDir()
	deadline := time.Now().Add(25 * time.Second)
	i := 0
	for ; i < 300 && time.Now().Before(deadline); i++ {
		size := (i * 104729) % (400 << 10)
		data := bytes.Repeat([]byte{byte(i)}, size)
		c := g.Command(ctx, "cat")
		c.Stdin = bytes.NewReader(data)
		got, err := c.Output()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round %d size %d: %d bytes, %v", i, size, len(got), err)
		}
		p := filepath.Join(dir, "f")
		if err := g.PutFile(ctx, p, bytes.NewReader(data), int64(size), nil); err != nil {
			t.Fatal(err)
		}
		var back bytes.Buffer
		if _, err := g.GetFile(ctx, p, &back, nil); err != nil || !bytes.Equal(back.Bytes(), data) {
			t.Fatalf("round %d file: %v", i, err)
		}
	}
	if i < 50 {
		t.Fatalf("only %d rounds in 25 s", i)
	}
	t.Logf("%d rounds", i)
}

func openFDs(t *testing.T) int {
	names, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(names)
}

// Many executions at once on one connection, each with its own stdin and output; afterwards the host's
// goroutines and file descriptors are back where they were.
func TestAgentConcurrentExecs(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	g.Ping(ctx)
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			data := bytes.Repeat([]byte(fmt.Sprintf("%d,", i)), 1+i*3000)
			c := g.Command(ctx, "cat")
			c.Stdin = bytes.NewReader(data)
			out, err := c.Output()
			if err != nil || !bytes.Equal(out, data) {
				errs <- fmt.Errorf("exec %d: %d of %d bytes, %v", i, len(out), len(data), err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := openFDs(t); n > fds {
		t.Fatalf("fds %d → %d", fds, n)
	}
	if n := runtime.NumGoroutine(); n > goroutines+2 {
		t.Fatalf("goroutines %d → %d", goroutines, n)
	}
}

// Closing the Guest ends what is pending with ECLOSED; a Listener's Accept ends with its context.
func TestCloseAndCancel(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	c := g.Command(ctx, "sleep", "30")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, func() { g.Close() })
	if _, err := c.Wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("%v", err)
	}
	if err := g.Command(ctx, "true").Run(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	<-g.Done()
	l, err := Listen(ctx, "unix-listen:"+filepath.Join(sockDir(t), "l.sock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := l.Accept(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Accept(ctx); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}
