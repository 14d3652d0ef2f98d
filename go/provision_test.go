package vge

import (
	"bytes"
	"errors"
	"path/filepath"
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
