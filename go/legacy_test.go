package vge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsock-guest-exec/vge-go/legacy"
)

// The original formats against the agent that dials the host, as the original tool's hosts use it.
func TestAgentLegacyFormats(t *testing.T) {
	ctx := tctx(t)
	d := sockDir(t)
	out := filepath.Join(d, "out")
	l, err := Listen(ctx, "unix-listen:"+filepath.Join(d, "h.sock"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	agent := startAgent(t, "--unix", l.Addr().ListenPath())
	c, err := l.AcceptConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := legacy.Disposable(ctx, c, "sleep 0.3; echo disposable > "+out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "disposable\n" || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("%q after %v", b, time.Since(start))
	}
	if err := agent.Wait(); err != nil {
		t.Fatalf("disposable agent: %v", err)
	}

	startAgent(t, "--unix", l.Addr().ListenPath(), "persistent")
	c, err = l.AcceptConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := legacy.NewPersistent(c)
	for _, cmd := range []string{"echo one >> " + out, "", "echo two >> " + out} {
		if err := p.Send(cmd); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Send(strings.Repeat("x", 2049)); err == nil {
		t.Fatal("over-long command accepted")
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "disposable\none\ntwo\n" {
		t.Fatalf("%q", b)
	}
}
