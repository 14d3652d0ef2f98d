package vge

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAgentExitCodesAndSignals(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	for _, code := range []int{0, 1, 3, 42, 255} {
		r, err := func() (ExitResult, error) {
			c := g.ShellCommand(ctx, fmt.Sprintf("exit %d", code))
			if err := c.Start(); err != nil {
				return ExitResult{}, err
			}
			return c.Wait()
		}()
		if err != nil || r.Status != "exited" || r.Code != code || r.ExitCode() != code {
			t.Fatalf("exit %d: %+v %v", code, r, err)
		}
	}
	c := g.Command(ctx, "sleep", "30")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if c.Process.PID() <= 0 {
		t.Fatalf("pid %d", c.Process.PID())
	}
	if err := c.Kill("term"); err != nil {
		t.Fatal(err)
	}
	r, err := c.Wait()
	if err != nil || r.Status != "signaled" || r.Signal != "SIGTERM" || r.Signo != 15 || r.ExitCode() != 143 {
		t.Fatalf("%+v %v", r, err)
	}
	if err := g.Command(ctx, "true").Kill("SIGNOPE"); err == nil {
		t.Fatal("kill before start accepted")
	}
}

// A timeout kills the whole process tree: the grandchild's pid is gone afterwards.
func TestAgentTimeoutKillsTree(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	var out bytes.Buffer
	c := g.ShellCommand(ctx, "sleep 60 & echo $!; wait")
	c.Stdout = &out
	c.Timeout = 500 * time.Millisecond
	start := time.Now()
	err := c.Run()
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Result.Status != "timeout" || ee.ExitCode() != 124 {
		t.Fatalf("%v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("took %v", d)
	}
	pid := strings.TrimSpace(out.String())
	// Gone, or a zombie waiting for a reaper: either way no longer running (state Z).
	probe, err := g.ShellCommand(ctx, "for i in 1 2 3 4 5 6 7 8 9 10; do s=$(cut -d' ' -f3 /proc/"+pid+"/stat 2>/dev/null); [ \"${s:-Z}\" = Z ] && break; sleep 0.2; done; echo ${s:-gone}").Output()
	if err != nil || (string(probe) != "gone\n" && string(probe) != "Z\n") {
		t.Fatalf("grandchild %s: %q %v", pid, probe, err)
	}
	c = g.Command(ctx, "sleep", "30")
	c.Timeout, c.KillSignal = 300*time.Millisecond, "TERM"
	err = c.Run()
	if !errors.As(err, &ee) || ee.Result.Status != "timeout" || ee.Result.Signal != "SIGTERM" {
		t.Fatalf("%v", err)
	}
}

// Stdin through a pipe with a half-close: the process sees EOF and answers after it; a Reader as Stdin.
func TestAgentStdin(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	c := g.Command(ctx, "sh", "-c", "wc -c; echo after-eof")
	w, _ := c.StdinPipe()
	stdout, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 3<<20+17)
	rand.Read(payload)
	go func() {
		w.Write(payload)
		w.Close()
	}()
	out, _ := io.ReadAll(stdout)
	if r, err := c.Wait(); err != nil || !r.Success() {
		t.Fatal(r, err)
	}
	if got := strings.Fields(string(out)); len(got) != 2 || got[0] != fmt.Sprint(len(payload)) || got[1] != "after-eof" {
		t.Fatalf("%q", out)
	}
	c = g.Command(ctx, "cat")
	c.Stdin = bytes.NewReader(payload)
	got, err := c.Output()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("cat: %d bytes, %v", len(got), err)
	}
	// No Stdin: /dev/null.
	got, err = g.Command(ctx, "cat").Output()
	if err != nil || len(got) != 0 {
		t.Fatalf("%q %v", got, err)
	}
}

func TestAgentEnvDirUser(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	c := g.ShellCommand(ctx, `printf '%s|%s|%s|' "$FOO" "${HOME-unset}" "$(pwd)"; id -u`)
	c.Env = map[string]string{"FOO": "bar baz"}
	c.Unsetenv = []string{"HOME"}
	c.Dir = "/tmp"
	out, err := c.Output()
	if err != nil || string(out) != fmt.Sprintf("bar baz|unset|/tmp|%d\n", os.Getuid()) {
		t.Fatalf("%q %v", out, err)
	}
	if os.Getuid() == 0 {
		c = g.ShellCommand(ctx, "id -un; id -g")
		c.User = "nobody"
		out, err := c.Output()
		if err != nil || !strings.HasPrefix(string(out), "nobody\n") {
			t.Fatalf("user nobody: %q %v", out, err)
		}
		uid, gid := uint32(4242), uint32(4343)
		c = g.ShellCommand(ctx, "echo $(id -u):$(id -g)")
		c.UID, c.GID = &uid, &gid
		if out, err := c.Output(); err != nil || string(out) != "4242:4343\n" {
			t.Fatalf("uid/gid: %q %v", out, err)
		}
	}
	c = g.Command(ctx, "pwd")
	c.Dir = "/no/such/dir"
	var ee *ExitError
	if err := c.Run(); !errors.As(err, &ee) || ee.Result.Status != "error" {
		t.Fatalf("%v", err)
	}
}

func TestAgentPTY(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	c := g.ShellCommand(ctx, `stty size; test -t 0 && echo tty; read line; stty size; echo "got $line"`)
	c.PTY = &PTY{Cols: 100, Rows: 30}
	w, _ := c.StdinPipe()
	stdout, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(out), "tty") {
		n, err := stdout.Read(buf)
		if err != nil {
			t.Fatalf("%q %v", out, err)
		}
		out = append(out, buf[:n]...)
	}
	if err := c.Resize(120, 40); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello\n"))
	rest, _ := io.ReadAll(stdout)
	r, err := c.Wait()
	if err != nil || !r.Success() {
		t.Fatal(r, err)
	}
	if s := string(append(out, rest...)); !strings.HasPrefix(s, "30 100\r\ntty") || !strings.Contains(s, "40 120\r\ngot hello") {
		t.Fatalf("%q", s)
	}
	if err := c.Resize(0, 5); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

// Context cancellation kills the process group.
func TestAgentContextCancel(t *testing.T) {
	g := dialAgent(t)
	ctx, cancel := context.WithCancel(context.Background())
	c := g.Command(ctx, "sleep", "30")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	r, err := c.Wait()
	if !errors.Is(err, context.Canceled) || r.Status != "signaled" || r.Signal != "SIGKILL" || time.Since(start) > 10*time.Second {
		t.Fatalf("%+v %v", r, err)
	}
	// The connection goes on.
	if _, err := g.Ping(tctx(t)); err != nil {
		t.Fatal(err)
	}
}

// Output is credited only as it is read: a reader that does not read leaves the host holding at most one
// window; many sizes round trip intact.
func TestAgentOutputFlow(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	c := g.ShellCommand(ctx, "head -c 8388608 /dev/zero")
	stdout, _ := c.StdoutPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if held := c.Process.win.heldBytes(); held > 256<<10 {
		t.Fatalf("host holds %d bytes", held)
	}
	start := time.Now()
	n, _ := io.Copy(io.Discard, stdout)
	if r, err := c.Wait(); err != nil || !r.Success() || n != 8<<20 {
		t.Fatal(n, r, err)
	}
	t.Logf("8 MiB of output in %v (%.0f MiB/s, with the race detector)", time.Since(start), 8/time.Since(start).Seconds())
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline) && i < 100; i++ {
		size := (i * 7919 * 13) % (600 << 10)
		out, err := g.ShellCommand(ctx, fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", size)).Output()
		if err != nil || len(out) != size {
			t.Fatalf("size %d: got %d, %v", size, len(out), err)
		}
	}
}

func TestAgentFiles(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	dir := t.TempDir()
	for _, size := range []int{0, 1, 65536, 65537, 1<<20 + 3} {
		data := make([]byte, size)
		rand.Read(data)
		p := filepath.Join(dir, fmt.Sprintf("f%d", size))
		mode := uint32(0o640)
		if err := g.PutFile(ctx, p, bytes.NewReader(data), int64(size), &PutOptions{Mode: &mode}); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(p)
		st, _ := os.Stat(p)
		if !bytes.Equal(got, data) || st.Mode().Perm() != 0o640 {
			t.Fatalf("size %d: %d bytes, mode %v", size, len(got), st.Mode())
		}
		var back bytes.Buffer
		info, err := g.GetFile(ctx, p, &back, nil)
		if err != nil || !bytes.Equal(back.Bytes(), data) || info.Size != int64(size) || info.Mode != 0o640 {
			t.Fatalf("get %d: %+v %v", size, info, err)
		}
	}
	_, err := g.GetFile(ctx, filepath.Join(dir, "missing"), io.Discard, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Errno != "ENOENT" || !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("%v", err)
	}
	big := filepath.Join(dir, "f1048579")
	if _, err := g.GetFile(ctx, big, io.Discard, &GetOptions{MaxSize: 1000}); !errors.As(err, &re) || re.Errno != "EFBIG" {
		t.Fatalf("%v", err)
	}
	// A source that ends early: the agent drops its temporary file, nothing lands.
	err = g.PutFile(ctx, filepath.Join(dir, "short"), strings.NewReader("abc"), 10, nil)
	if err == nil {
		t.Fatal("short source accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "short")); !os.IsNotExist(err) {
		t.Fatal("short file landed")
	}
	if err := g.PutFile(ctx, "relative", strings.NewReader(""), 0, nil); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

func TestAgentToken(t *testing.T) {
	d := sockDir(t)
	tokFile := filepath.Join(d, "tok")
	os.WriteFile(tokFile, []byte("correct horse battery staple 42\n"), 0o600)
	addr := listeningAgent(t, "--token-file", tokFile)
	ctx := tctx(t)
	g, err := Dial(ctx, addr, &Options{TokenFile: tokFile})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !g.Authenticated() || g.Info().Hostname == "" {
		t.Fatal("not authenticated")
	}
	if out, err := g.Command(ctx, "echo", "ok").Output(); err != nil || string(out) != "ok\n" {
		t.Fatal(out, err)
	}
	if _, err := Dial(ctx, addr, &Options{Token: []byte("a wrong token of enough bytes")}); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := Dial(ctx, addr, nil); !errors.Is(err, ErrAuth) {
		t.Fatalf("no token: %v", err)
	}
	if _, err := Dial(ctx, addr, &Options{Token: []byte("short")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("short token: %v", err)
	}
	// A host with a token refuses an agent without one.
	plain := listeningAgent(t)
	if _, err := Dial(ctx, plain, &Options{TokenFile: tokFile}); !errors.Is(err, ErrAuth) {
		t.Fatalf("agent without token: %v", err)
	}
}

// Every address form that works without AF_VSOCK: unix: (agent listens), unix-listen: and fc-listen:
// (agent dials), fc: through a fake Firecracker CONNECT proxy.
func TestAgentAddressForms(t *testing.T) {
	ctx := tctx(t)
	check := func(g *Guest, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		out, err := g.Command(ctx, "echo", "hi").Output()
		if err != nil || string(out) != "hi\n" {
			t.Fatal(out, err)
		}
	}
	d := sockDir(t)
	for _, form := range []string{"unix-listen:" + filepath.Join(d, "h.sock"), "fc-listen:" + filepath.Join(d, "v.sock") + ":1024"} {
		l, err := Listen(ctx, form, nil)
		if err != nil {
			t.Fatal(err)
		}
		startAgent(t, "--unix", l.Addr().ListenPath())
		check(l.Accept(ctx))
		l.Close()
	}
	agentAddr := listeningAgent(t)
	proxy := filepath.Join(d, "fc.sock")
	fakeFirecracker(t, proxy, map[uint32]string{1024: strings.TrimPrefix(agentAddr, "unix:")})
	check(Dial(ctx, "fc:"+proxy+":1024", nil))
	if _, err := Dial(ctx, "fc:"+proxy+":9", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("no listener on port 9: %v", err)
	}
	if _, err := Dial(ctx, "unix-listen:/x", nil); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

// fakeFirecracker serves the VMM's host-side protocol: "CONNECT PORT\n" → "OK <hostport>\n", then splices
// to the Unix socket standing for that guest port.
func fakeFirecracker(t testing.TB, path string, ports map[uint32]string) {
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var port uint32
				line := make([]byte, 0, 32)
				b := make([]byte, 1)
				for len(line) < 32 {
					if _, err := c.Read(b); err != nil {
						return
					}
					if b[0] == '\n' {
						break
					}
					line = append(line, b[0])
				}
				if _, err := fmt.Sscanf(string(line), "CONNECT %d", &port); err != nil || ports[port] == "" {
					return
				}
				up, err := net.Dial("unix", ports[port])
				if err != nil {
					return
				}
				defer up.Close()
				fmt.Fprintf(c, "OK %d\n", 1073741824+port)
				go func() { io.Copy(up, c); up.(*net.UnixConn).CloseWrite() }()
				io.Copy(c, up)
			}()
		}
	}()
}
