package vge

import (
	"errors"
	"testing"
)

// Limits on an agent without --cgroup are refused (ENOTSUP) and nothing runs; usage is reported from
// rusage when asked for (PROTOCOL.md §5.2). Containment itself runs in guests (test/guest/contain.test.ts).
func TestAgentLimitsAndUsage(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	c := g.Command(ctx, "true")
	c.Limits = &Limits{MemoryBytes: 64 << 20, Pids: 16}
	err := c.Run()
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Result.Status != "error" || ee.Result.Errno != "ENOTSUP" {
		t.Fatalf("limits without --cgroup: %v", err)
	}
	c = g.ShellCommand(ctx, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done")
	c.Usage = true
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	u := c.Result.Usage
	if u == nil || u.From != "rusage" || u.UserUsec+u.SystemUsec <= 0 {
		t.Fatalf("usage: %+v", u)
	}
	c = g.Command(ctx, "true")
	c.Limits = &Limits{MemoryBytes: 1}
	if err := c.Start(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a memory limit under 1 MiB must be refused here, got %v", err)
	}
}
