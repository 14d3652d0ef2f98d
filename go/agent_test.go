package vge

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The compiled agent (bun run build), spawned as a user runs it, over Unix sockets only: this machine's
// AF_VSOCK is never dialed.
var agentBin = "../dist/vsock_guest_exec-linux-x64"

func init() {
	if p := os.Getenv("VGE_AGENT_BINARY"); p != "" {
		agentBin = p
	}
}

func needAgent(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("VGE_REQUIRE_AGENT") != "" {
			t.Fatalf("%s is missing: run bun run build", p)
		}
		t.Skipf("%s is missing: run bun run build", p)
	}
	return p
}

// sockDir is a short directory for sockets (sun_path holds 107 bytes; t.TempDir can be longer).
func sockDir(t testing.TB) string {
	d, err := os.MkdirTemp("/tmp", "vgego")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// startAgent starts the agent with args; it is killed (by its PID) when the test ends. The channel gets
// the agent's "listening on" line, which it writes once its socket accepts connections.
func startAgent(t testing.TB, args ...string) *exec.Cmd {
	cmd, _ := startAgentReady(t, args...)
	return cmd
}

func startAgentReady(t testing.TB, args ...string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(needAgent(t), args...)
	cmd.Stdout = os.Stderr
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		s := bufio.NewScanner(stderr)
		once := false
		for s.Scan() {
			if !once && strings.Contains(s.Text(), "listening on") {
				once = true
				close(ready)
			}
			if testing.Verbose() {
				fmt.Fprintln(os.Stderr, "agent:", s.Text())
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, ready
}

// listeningAgent starts `--listen --unix PATH` and waits until it listens; returns the unix: address.
func listeningAgent(t testing.TB, extra ...string) string {
	t.Helper()
	path := filepath.Join(sockDir(t), "a.sock")
	_, ready := startAgentReady(t, append([]string{"--listen", "--unix", path}, extra...)...)
	select {
	case <-ready:
		return "unix:" + path
	case <-time.After(30 * time.Second):
		t.Fatalf("the agent did not listen on %s within 30 s", path)
	}
	return ""
}

func dialAgent(t testing.TB, extra ...string) *Guest {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := Dial(ctx, listeningAgent(t, extra...), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func tctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAgentRunOutput(t *testing.T) {
	g := dialAgent(t)
	if g.Info().Version != 2 || !g.Info().Has("exec") {
		t.Fatalf("info %+v", g.Info())
	}
	ctx := tctx(t)
	cmd := g.Command(ctx, "sh", "-c", "echo out; echo err >&2; exit 3")
	out, err := cmd.Output()
	ee, ok := err.(*ExitError)
	if !ok || ee.Result.Code != 3 || string(out) != "out\n" || string(ee.Stderr) != "err\n" {
		t.Fatalf("out %q err %v", out, err)
	}
	if err := g.Command(ctx, "true").Run(); err != nil {
		t.Fatal(err)
	}
	out, err = g.ShellCommand(ctx, "echo a; echo b >&2; echo c").CombinedOutput()
	if err != nil || string(out) != "a\nb\nc\n" {
		t.Fatalf("combined %q %v", out, err)
	}
	err = g.Command(ctx, "no-such-program-xyz").Run()
	ee, ok = err.(*ExitError)
	if !ok || ee.Result.Status != "error" || ee.Result.Errno != "ENOENT" || ee.ExitCode() != 127 || !strings.Contains(ee.Error(), "ENOENT") {
		t.Fatalf("missing program: %v", err)
	}
}
