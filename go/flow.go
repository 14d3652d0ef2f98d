package vge

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/vsock-guest-exec/vge-go/wire"
)

// sendWindow is the credit the agent gave this host for one stream (stdin, PUT data, a directory stream,
// TCP data): bytes are sent only within it, and a WINDOW that would take it past its start is EFLOW (§7).
type sendWindow struct {
	mu    sync.Mutex
	avail int64
	max   int64
	err   error
	wake  chan struct{}
	dl    deadline
}

func newSendWindow(max uint32) *sendWindow {
	return &sendWindow{avail: int64(max), max: int64(max), wake: make(chan struct{})}
}

// reset sets the credit held now (at most the window), e.g. from ATTACHED's stdin.
func (w *sendWindow) reset(avail int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.avail = min(avail, w.max)
	w.signal()
}

func (w *sendWindow) signal() { close(w.wake); w.wake = make(chan struct{}) }

// take waits until at least min(want, window) bytes of credit are there and takes up to want of them.
// exact: all of want (a directory entry header counts whole).
func (w *sendWindow) take(ctx context.Context, want int, exact bool) (int, error) {
	need := int64(1)
	if exact {
		need = min(int64(want), w.max)
	}
	for {
		w.mu.Lock()
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return 0, err
		}
		if w.avail >= need {
			n := min(int64(want), w.avail)
			w.avail -= n
			w.mu.Unlock()
			return int(n), nil
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-w.dl.expired():
			return 0, errDeadline
		}
	}
}

// give returns credit: more than was sent is the agent's violation.
func (w *sendWindow) give(n uint32) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.avail+int64(n) > w.max {
		return wire.Flowf("WINDOW of %d bytes would take the credit past the window of %d", n, w.max)
	}
	w.avail += int64(n)
	w.signal()
	return nil
}

func (w *sendWindow) close(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
		w.signal()
	}
	w.mu.Unlock()
}

// recvWindow is the credit this host gave the agent for one id: what arrives beyond it fails the
// connection (EFLOW) before anything is kept, so a guest can make the host hold at most one window per id.
type recvWindow struct {
	g    *Guest
	id   uint32
	mu   sync.Mutex
	held int64 // received, not yet returned
	max  int64
}

func (r *recvWindow) receive(n int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held+int64(n) > r.max {
		return wire.Flowf("the agent sent %d bytes on id %d with %d of credit left", n, r.id, r.max-r.held)
	}
	r.held += int64(n)
	return nil
}

// consumed returns credit for n bytes that were read (or dropped).
func (r *recvWindow) consumed(n int) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	r.held -= int64(n)
	r.mu.Unlock()
	r.g.returnCredit(r.id, uint32(n))
}

// inbox holds the frames of one stream that arrived and were not yet read: never more than the credit
// the recvWindow gave. Reads return credit as they go; after drop() arrivals are credited at once.
type inbox struct {
	win     *recvWindow
	mu      sync.Mutex
	q       []wire.Frame
	off     int // read offset into q[0]
	eof     bool
	err     error
	dropped bool
	wake    chan struct{}
	dl      deadline
	total   int64 // bytes read so far
}

func newInbox(win *recvWindow) *inbox { return &inbox{win: win, wake: make(chan struct{})} }

func (b *inbox) signal() { close(b.wake); b.wake = make(chan struct{}) }

// push is called by the connection's reader after the window check.
func (b *inbox) push(f wire.Frame) {
	b.mu.Lock()
	if b.dropped {
		b.mu.Unlock()
		b.win.consumed(len(f.Payload))
		return
	}
	b.q = append(b.q, f)
	b.signal()
	b.mu.Unlock()
}

// end marks the stream complete (err nil: EOF after the queued data).
func (b *inbox) end(err error) {
	b.mu.Lock()
	if !b.eof {
		b.eof, b.err = true, err
		b.signal()
	}
	b.mu.Unlock()
}

// drop discards what is queued and all that comes, crediting it: a reader that is gone must not stall the
// process writing.
func (b *inbox) drop() {
	b.mu.Lock()
	n := 0
	for i, f := range b.q {
		n += len(f.Payload)
		if i == 0 {
			n -= b.off
		}
	}
	b.q, b.off, b.dropped = nil, 0, true
	b.signal()
	b.mu.Unlock()
	b.win.consumed(n)
}

// next returns the next whole frame (for directory streams), crediting nothing: the caller credits after use.
func (b *inbox) next(ctx context.Context) (wire.Frame, error) {
	for {
		b.mu.Lock()
		if len(b.q) > 0 {
			f := b.q[0]
			b.q = b.q[1:]
			b.mu.Unlock()
			return f, nil
		}
		if b.eof {
			err := b.err
			b.mu.Unlock()
			if err == nil {
				err = io.EOF
			}
			return wire.Frame{}, err
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return wire.Frame{}, ctx.Err()
		}
	}
}

// Read implements io.Reader over the payload bytes, returning credit for what it hands out.
func (b *inbox) Read(p []byte) (int, error) {
	for {
		b.mu.Lock()
		if len(b.q) > 0 {
			n := copy(p, b.q[0].Payload[b.off:])
			b.off += n
			if b.off == len(b.q[0].Payload) {
				b.q[0] = wire.Frame{}
				b.q, b.off = b.q[1:], 0
			}
			b.total += int64(n)
			b.mu.Unlock()
			b.win.consumed(n)
			if n == 0 && len(p) > 0 {
				continue // an empty data frame
			}
			return n, nil
		}
		if b.eof || b.dropped {
			err := b.err
			b.mu.Unlock()
			if err == nil {
				err = io.EOF
			}
			return 0, err
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-b.dl.expired():
			return 0, errDeadline
		}
	}
}

// Close stops reading: what arrives later is dropped and credited.
func (b *inbox) Close() error { b.drop(); return nil }

func (b *inbox) read() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// deadline is a settable point in time whose channel closes when it passes (net.Conn deadlines).
type deadline struct {
	mu    sync.Mutex
	t     *time.Timer
	ch    chan struct{}
	fired bool
}

var errDeadline = deadlineError{}

type deadlineError struct{}

func (deadlineError) Error() string   { return "i/o timeout" }
func (deadlineError) Timeout() bool   { return true }
func (deadlineError) Temporary() bool { return true }
func (deadlineError) Is(t error) bool { return t == osErrDeadlineExceeded }

func (d *deadline) expired() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.t != nil {
		d.t.Stop()
		d.t = nil
	}
	if d.ch == nil || d.fired {
		d.ch, d.fired = make(chan struct{}), false
	}
	if t.IsZero() {
		return
	}
	ch := d.ch
	fire := func() {
		d.mu.Lock()
		if d.ch == ch && !d.fired {
			d.fired = true
			close(ch)
		}
		d.mu.Unlock()
	}
	if dur := time.Until(t); dur <= 0 {
		d.fired = true
		close(ch)
	} else {
		d.t = time.AfterFunc(dur, fire)
	}
}

// heldBytes is what the host holds for the agent's stream now (tests measure the bound with it).
func (r *recvWindow) heldBytes() int64 { r.mu.Lock(); defer r.mu.Unlock(); return r.held }
