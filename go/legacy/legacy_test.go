package legacy

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The bytes of both formats, and a peer that talks back (not an original agent). The agent itself is
// exercised in ../legacy_test.go.
func TestFormats(t *testing.T) {
	a, b := net.Pipe()
	got := make(chan []byte, 1)
	go func() { buf, _ := io.ReadAll(b); got <- buf }()
	p := NewPersistent(a)
	p.Send("echo hi")
	p.Send("")
	if err := p.Send(strings.Repeat("x", MaxCommand+1)); err == nil {
		t.Fatal("over-long command accepted")
	}
	a.Close()
	if want := []byte("\x07\x00echo hi\x00\x00"); !bytes.Equal(<-got, want) {
		t.Fatal("persistent bytes differ")
	}

	a, b = net.Pipe()
	go func() {
		buf := make([]byte, 7)
		io.ReadFull(b, buf)
		b.Write([]byte("?"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := Disposable(ctx, a, "echo hi"); err == nil || !strings.Contains(err.Error(), "not an original-format agent") {
		t.Fatalf("%v", err)
	}
	a, _ = net.Pipe()
	if err := Disposable(ctx, a, strings.Repeat("x", MaxCommand+1)); err == nil {
		t.Fatal("over-long disposable accepted")
	}
	a, b = net.Pipe()
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	go io.Copy(io.Discard, b)
	if err := Disposable(short, a, "sleep"); err != context.DeadlineExceeded {
		t.Fatalf("%v", err)
	}
}
