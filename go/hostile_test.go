package vge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vsock-guest-exec/vge-go/wire"
)

// fake is a scripted, hostile agent on the other end of a Unix socket.
type fake struct {
	t    testing.TB
	c    net.Conn
	dec  *wire.Decoder
	sent int64
}

var goodWelcome = map[string]any{"version": 2, "agent": "fake", "capabilities": []string{"exec", "files", "dirs", "detach", "tcp"},
	"hostname": "fake", "kernel": "6", "arch": "x64", "initrd": false, "pid": 1, "maxPayload": wire.MaxPayload, "window": wire.DefaultWindow}

// withFake dials a fake agent that reads the magic and HELLO, answers welcome (nil: goodWelcome), then runs
// script. The Guest and the Dial error are returned.
func withFake(t *testing.T, welcome map[string]any, script func(f *fake)) (*Guest, error) {
	t.Helper()
	path := filepath.Join(sockDir(t), "f.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		f := &fake{t: t, c: c, dec: wire.NewDecoder(c)}
		magic := make([]byte, 8)
		if _, err := io.ReadFull(c, magic); err != nil || !bytes.Equal(magic, wire.Magic[:]) {
			return
		}
		if h, err := f.dec.Next(); err != nil || h.Type != wire.Hello {
			return
		}
		if welcome == nil {
			welcome = goodWelcome
		}
		if len(welcome) > 0 {
			f.json(wire.Welcome, 0, welcome)
		}
		script(f)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g, err := Dial(ctx, "unix:"+path, &Options{HelloTimeout: 2 * time.Second})
	if g != nil {
		t.Cleanup(func() { g.Close() })
	}
	return g, err
}

func (f *fake) raw(b []byte) error {
	n, err := f.c.Write(b)
	f.sent += int64(n)
	return err
}

func (f *fake) frame(t wire.Type, id uint32, p []byte) error {
	return f.raw(wire.EncodeFrame(t, id, p))
}

func (f *fake) json(t wire.Type, id uint32, body any) error {
	b, err := wire.EncodeJSON(t, id, body)
	if err != nil {
		f.t.Error(err)
	}
	return f.raw(b)
}

// expect reads frames until one of type t (WINDOWs and others are skipped).
func (f *fake) expect(t wire.Type) wire.Frame {
	for {
		fr, err := f.dec.Next()
		if err != nil {
			return wire.Frame{}
		}
		if fr.Type == t {
			return fr
		}
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

// A guest that floods output past the window: the host fails the connection with EFLOW at the first byte
// over, having held no more than one window, and its memory does not follow the flood.
func TestHostileOutputFlood(t *testing.T) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	flooded := make(chan int64, 1)
	g, err := withFake(t, nil, func(f *fake) {
		ex := f.expect(wire.Exec)
		f.json(wire.Started, ex.ID, map[string]any{"pid": 7})
		chunk := make([]byte, wire.Chunk)
		deadline := time.Now().Add(10 * time.Second)
		for f.sent < 256<<20 && time.Now().Before(deadline) {
			if f.frame(wire.Stdout, ex.ID, chunk) != nil {
				break
			}
		}
		flooded <- f.sent
	})
	if err != nil {
		t.Fatal(err)
	}
	c := g.Command(tctx(t), "yes")
	stdout, _ := c.StdoutPipe() // never read: only the window may be held
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Wait()
	wantCode(t, err, "EFLOW")
	if !errors.Is(err, ErrFlow) || !errors.Is(g.Err(), ErrFlow) {
		t.Fatalf("errors.Is: %v / %v", err, g.Err())
	}
	sent := <-flooded
	if sent > 32<<20 {
		t.Fatalf("the fake wrote %d bytes before the host hung up", sent)
	}
	if held := c.Process.win.heldBytes(); held > wire.DefaultWindow {
		t.Fatalf("held %d", held)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 8<<20 {
		t.Fatalf("heap grew by %d bytes", grew)
	}
	stdout.Close()
	t.Logf("fake wrote %d bytes before EFLOW", sent)
}

// Credit given back beyond what was sent is the agent's violation too (§7).
func TestHostileWindowOverrun(t *testing.T) {
	g, err := withFake(t, nil, func(f *fake) {
		ex := f.expect(wire.Exec)
		f.json(wire.Started, ex.ID, map[string]any{"pid": 7})
		f.frame(wire.Window, ex.ID, []byte{1, 0, 0, 0})
		f.expect(wire.Ping)
	})
	if err != nil {
		t.Fatal(err)
	}
	c := g.Command(tctx(t), "cat")
	c.StdinPipe()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Wait()
	wantCode(t, err, "EFLOW")
}

// Lying sizes: a GET whose RESULT size differs from the bytes sent, and one that sends past maxSize.
func TestHostileLyingSizes(t *testing.T) {
	g, err := withFake(t, nil, func(f *fake) {
		get := f.expect(wire.Get)
		f.frame(wire.FileData, get.ID, []byte("0123456789"))
		f.json(wire.Result, get.ID, map[string]any{"ok": true, "size": 5})
		f.expect(wire.Ping)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.GetFile(tctx(t), "/x", io.Discard, nil)
	wantCode(t, err, "EPROTO")

	g, err = withFake(t, nil, func(f *fake) {
		get := f.expect(wire.Get)
		f.frame(wire.FileData, get.ID, make([]byte, 100))
		f.expect(wire.Ping)
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.GetFile(tctx(t), "/x", io.Discard, &GetOptions{MaxSize: 10})
	wantCode(t, err, "EPROTO")
}

// Malformed frames each fail the connection with EPROTO; nothing is allocated for an absurd length.
func TestHostileMalformedFrames(t *testing.T) {
	hdr := func(length uint32, typ byte, id uint32) []byte {
		b := wire.EncodeFrame(wire.Type(typ), id, nil)
		b[0], b[1], b[2], b[3] = byte(length), byte(length>>8), byte(length>>16), byte(length>>24)
		return b
	}
	cases := map[string]func(f *fake, id uint32){
		"length below 5":  func(f *fake, id uint32) { f.raw(hdr(4, 0x14, id)) },
		"length 4 GiB":    func(f *fake, id uint32) { f.raw(hdr(0xffffffff, 0x14, id)) },
		"unknown type":    func(f *fake, id uint32) { f.raw(hdr(5, 0x55, id)) },
		"EXIT not JSON":   func(f *fake, id uint32) { f.frame(wire.Exit, id, []byte("exit 0")) },
		"EXIT not UTF-8":  func(f *fake, id uint32) { f.frame(wire.Exit, id, []byte("{\"status\":\"\xff\"}")) },
		"EXIT code 300":   func(f *fake, id uint32) { f.json(wire.Exit, id, map[string]any{"status": "exited", "code": 300}) },
		"EXIT bad status": func(f *fake, id uint32) { f.json(wire.Exit, id, map[string]any{"status": "fine"}) },
		"EXIT signal text": func(f *fake, id uint32) {
			f.json(wire.Exit, id, map[string]any{"status": "signaled", "signal": "\x1b[2J", "signo": 9})
		},
		"second STARTED":     func(f *fake, id uint32) { f.json(wire.Started, id, map[string]any{"pid": 8}) },
		"WINDOW of 3 bytes":  func(f *fake, id uint32) { f.frame(wire.Window, id, []byte{1, 2, 3}) },
		"second WELCOME":     func(f *fake, id uint32) { f.json(wire.Welcome, 0, goodWelcome) },
		"RESULT for an exec": func(f *fake, id uint32) { f.json(wire.Result, id, map[string]any{"ok": true, "size": 0}) },
		"cut in a frame":     func(f *fake, id uint32) { f.raw(hdr(100, 0x14, id)); f.c.(*net.UnixConn).CloseWrite() },
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			g, err := withFake(t, nil, func(f *fake) {
				ex := f.expect(wire.Exec)
				f.json(wire.Started, ex.ID, map[string]any{"pid": 7})
				f.frame(wire.Stdout, 999, []byte("for an id nobody holds: ignored"))
				bad(f, ex.ID)
				f.expect(wire.Ping)
			})
			if err != nil {
				t.Fatal(err)
			}
			c := g.Command(tctx(t), "x")
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			_, err = c.Wait()
			want := "EPROTO"
			if name == "cut in a frame" {
				want = "ECLOSED"
			}
			wantCode(t, err, want)
			if strings.ContainsRune(err.Error(), 0x1b) {
				t.Fatalf("escape in %q", err)
			}
		})
	}
}

// The agent's ERROR: its code for errors.Is, a code that is not a name becomes EREMOTE, text is escaped.
func TestHostileErrorFrame(t *testing.T) {
	for code, want := range map[string]string{"EBUSY": "EBUSY", "\x1b]0;pwned\x07": "EREMOTE"} {
		g, err := withFake(t, map[string]any{}, func(f *fake) {
			f.json(wire.Error, 0, map[string]any{"code": code, "message": "no \x1b[31mred\x1b[0m"})
		})
		if g != nil || err == nil {
			t.Fatal("dial succeeded")
		}
		wantCode(t, err, want)
		if strings.ContainsRune(err.Error(), 0x1b) || !strings.Contains(err.Error(), `\e[31m`) {
			t.Fatalf("%q", err)
		}
	}
}

// Absurd WELCOMEs are refused; an agent that never answers or closes is EHELLO.
func TestHostileWelcome(t *testing.T) {
	mut := func(k string, v any) map[string]any {
		w := map[string]any{}
		for a, b := range goodWelcome {
			w[a] = b
		}
		w[k] = v
		return w
	}
	for name, w := range map[string]map[string]any{
		"window 0":          mut("window", 0),
		"window 1 GiB":      mut("window", 1<<30),
		"hostname 10k":      mut("hostname", strings.Repeat("h", 10000)),
		"version 3":         mut("version", 3),
		"capability upper":  mut("capabilities", []string{"EXEC"}),
		"initrd not a bool": mut("initrd", "yes"),
		"pid negative":      mut("pid", -1),
	} {
		_, err := withFake(t, w, func(f *fake) {})
		if err == nil {
			t.Fatalf("%s accepted", name)
		}
		wantCode(t, err, "EPROTO")
	}
	_, err := withFake(t, map[string]any{}, func(f *fake) { time.Sleep(3 * time.Second) })
	wantCode(t, err, "EHELLO")
	_, err = withFake(t, map[string]any{}, func(f *fake) {})
	wantCode(t, err, "EHELLO")
}

// The same bounds on every stream and job frame: floods on a GET and on a TCP stream, a LISTING that
// never ends, ATTACHED and DETACHED bodies out of range, TCP_DATA after the agent's TCP_EOF.
func TestHostileStreams(t *testing.T) {
	flood := func(f *fake, typ wire.Type, id uint32) {
		chunk := make([]byte, wire.Chunk)
		for i := 0; i < 1024; i++ {
			if f.frame(typ, id, chunk) != nil {
				return
			}
		}
	}
	job := map[string]any{"job": 1, "tag": nil, "pid": 5, "argv": []string{"x"}, "startedAt": 1, "state": "running", "attached": false,
		"stdout": map[string]any{"total": 0, "kept": 0}, "stderr": map[string]any{"total": 0, "kept": 0}}
	// A TCP stream that the fake guest opens and then abuses: its error is what the stream ended with.
	dialTCP := func(g *Guest) error {
		c, err := g.DialTCP(tctx(t), "127.0.0.1", 80)
		if err != nil {
			return err
		}
		<-c.Closed()
		return c.Err()
	}
	cases := []struct {
		name string
		want string
		call func(g *Guest) error
		fake func(f *fake)
	}{
		// The destination takes nothing until the connection has ended: no credit goes back, so the flood is
		// past the window whatever the timing (with io.Discard a host that kept up returned credit in time,
		// took all 64 MiB legitimately and then waited for a RESULT that never came).
		{"GET flood", "EFLOW", func(g *Guest) error { _, err := g.GetFile(tctx(t), "/x", stalled{g.Done()}, nil); return err },
			func(f *fake) { flood(f, wire.FileData, f.expect(wire.Get).ID) }},
		{"TCP flood", "EFLOW", dialTCP, func(f *fake) {
			id := f.expect(wire.TCPOpen).ID
			f.json(wire.TCPOpened, id, map[string]any{"address": "127.0.0.1", "port": 80})
			flood(f, wire.TCPData, id)
		}},
		{"TCP_DATA after TCP_EOF", "EPROTO", dialTCP, func(f *fake) {
			id := f.expect(wire.TCPOpen).ID
			f.json(wire.TCPOpened, id, map[string]any{})
			f.frame(wire.TCPEOF, id, nil)
			f.frame(wire.TCPData, id, []byte("late"))
		}},
		{"LISTING without end", "EPROTO", func(g *Guest) error { _, err := g.List(tctx(t)); return err }, func(f *fake) {
			id := f.expect(wire.List).ID
			jobs := make([]map[string]any, 1000)
			for i := range jobs {
				jobs[i] = job
			}
			for i := 0; i < 10; i++ {
				if f.json(wire.Listing, id, map[string]any{"jobs": jobs, "more": true}) != nil {
					return
				}
			}
		}},
		{"LISTING argv too long", "EPROTO", func(g *Guest) error { _, err := g.List(tctx(t)); return err }, func(f *fake) {
			bad := map[string]any{}
			for k, v := range job {
				bad[k] = v
			}
			bad["argv"] = []string{strings.Repeat("a", 5000)}
			f.json(wire.Listing, f.expect(wire.List).ID, map[string]any{"jobs": []any{bad}, "more": false})
		}},
		{"ATTACHED negative offset", "EPROTO", func(g *Guest) error { _, err := g.Attach(tctx(t), ByTag("t"), nil); return err }, func(f *fake) {
			f.json(wire.Attached, f.expect(wire.Attach).ID, map[string]any{"job": 1, "tag": "t", "pid": 1, "state": "running",
				"stdout": map[string]any{"from": -1, "dropped": 0}, "stderr": map[string]any{"from": 0, "dropped": 0}})
		}},
		{"DETACHED errno not a name", "EPROTO", func(g *Guest) error { return g.KillJob(tctx(t), ByJob(1), "TERM") }, func(f *fake) {
			f.json(wire.Detached, f.expect(wire.Kill).ID, map[string]any{"errno": "\x1b[2J", "message": "x"})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, err := withFake(t, nil, func(f *fake) { c.fake(f); f.expect(wire.Ping) })
			if err != nil {
				t.Fatal(err)
			}
			err = c.call(g)
			wantCode(t, err, c.want)
			if !errors.Is(g.Err(), &Error{Code: c.want}) {
				t.Fatalf("connection: %v", g.Err())
			}
		})
	}
}

// stalled is a writer that takes nothing until done is closed, then fails.
type stalled struct{ done <-chan struct{} }

func (w stalled) Write([]byte) (int, error) {
	<-w.done
	return 0, io.ErrClosedPipe
}
