package vge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Detached executions: a job outlives its connection, is listed, attached from another connection with
// offsets, taken over (EBUSY), killed.
func TestAgentDetachAttachKill(t *testing.T) {
	addr := listeningAgent(t)
	ctx := tctx(t)
	g1, err := Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := g1.ShellCommand(ctx, "i=0; while [ $i -lt 5 ]; do echo line$i; i=$((i+1)); done; sleep 30")
	c.Detach = &Detach{Tag: "prov", Keep: 4096}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if c.Process.Job() == 0 || c.Process.Tag() != "prov" {
		t.Fatalf("job %d tag %q", c.Process.Job(), c.Process.Tag())
	}
	job := c.Process.Job()
	g1.Close()

	g2, err := Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	// The job writes its five lines on its own time: wait until all 30 bytes are counted.
	var jobs []JobInfo
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		jobs, err = g2.List(ctx)
		if err != nil || len(jobs) != 1 || jobs[0].Tag != "prov" || jobs[0].State != "running" || jobs[0].Job != job {
			t.Fatalf("%+v %v", jobs, err)
		}
		if jobs[0].Stdout.Total == 30 || time.Now().After(end) {
			break
		}
	}
	if jobs[0].Stdout.Total != 30 || jobs[0].Stdout.Kept != 30 || jobs[0].Argv[0] == "" {
		t.Fatalf("%+v", jobs[0])
	}
	var re *RemoteError
	if _, err := g2.Attach(ctx, ByTag("prov"), &Offsets{Stdout: 1 << 40}); !errors.As(err, &re) || re.Errno != "ERANGE" {
		t.Fatalf("offset past the end: %v", err)
	}
	// From byte 6: "line0\n" is skipped.
	p, err := g2.Attach(ctx, ByTag("prov"), &Offsets{Stdout: 6})
	if err != nil {
		t.Fatal(err)
	}
	so, _, ok := p.Replay()
	if !ok || so.From != 6 || so.Dropped != 0 {
		t.Fatalf("replay %+v", so)
	}
	buf := make([]byte, 4096)
	var got []byte
	for !bytes.Contains(got, []byte("line4\n")) {
		n, err := p.Stdout().Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != "line1\nline2\nline3\nline4\n" || p.Offsets().Stdout != 30 {
		t.Fatalf("%q offsets %+v", got, p.Offsets())
	}
	// A second follower takes over: the first gets EBUSY.
	q, err := g2.Attach(ctx, ByJob(job), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("taken over: %v", err)
	}
	if err := g2.KillJob(ctx, ByTag("prov"), "TERM"); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, q.Stdout())
	r, err := q.Wait(ctx)
	if err != nil || r.Status != "signaled" || r.Signal != "SIGTERM" {
		t.Fatalf("%+v %v", r, err)
	}
	if err := g2.KillJob(ctx, ByTag("nosuch"), "TERM"); !errors.As(err, &re) || re.Errno != "ENOENT" || !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("%v", err)
	}
	if _, err := g2.Attach(ctx, ByTag("nosuch"), nil); !errors.As(err, &re) || re.Errno != "ENOENT" {
		t.Fatalf("%v", err)
	}
	if err := g2.KillJob(ctx, ByJob(job), "TERM"); !errors.As(err, &re) || (re.Errno != "ESRCH" && re.Errno != "ENOENT") {
		t.Fatalf("ended job: %v", err)
	}
	if _, err := g2.Attach(ctx, ByTag("bad tag!"), nil); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

// TCP streams to a server on the guest's loopback (the agent runs here, so that is ours): half-close both
// ways, many at once, a refused port, deadlines.
func TestAgentTCP(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c) // until the host's CloseWrite
				c.Write([]byte(strings.ToUpper(string(b))))
			}()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := g.DialTCP(ctx, "127.0.0.1", port)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			msg := strings.Repeat(fmt.Sprintf("hello %d ", i), 1+i*5000)
			go func() { c.Write([]byte(msg)); c.CloseWrite() }()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != strings.ToUpper(msg) {
				errs <- fmt.Errorf("stream %d: %d bytes, %v", i, len(got), err)
			}
			select {
			case <-c.Closed():
			case <-time.After(10 * time.Second):
				errs <- fmt.Errorf("stream %d: no TCP_CLOSED", i)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	l2, _ := net.Listen("tcp", "127.0.0.1:0")
	free := l2.Addr().(*net.TCPAddr).Port
	l2.Close()
	var re *RemoteError
	if _, err := g.DialTCP(ctx, "127.0.0.1", free); !errors.As(err, &re) || re.Errno != "ECONNREFUSED" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("refused: %v", err)
	}
	if _, err := g.DialTCP(ctx, "bad host!", 80); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	// A read deadline on a stream whose server says nothing.
	c, err := g.DialTCP(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, errDeadline) {
		t.Fatalf("deadline: %v", err)
	}
	var ne net.Error
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatal(err)
	}
	c.Close()
	if _, err := g.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
