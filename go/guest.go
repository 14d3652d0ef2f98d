package vge

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/vsock-guest-exec/vge-go/wire"
)

var osErrDeadlineExceeded = os.ErrDeadlineExceeded

// handler owns one id: an execution, a file request, a TCP stream, ...
type handler interface {
	// frame is called by the connection's reader, one frame at a time; it must not block. An error fails
	// the connection.
	frame(f wire.Frame) error
	// fail ends the request with the connection's failure.
	fail(err error)
}

// Guest is one v2 connection to an agent. Its methods may be called from many goroutines at once.
type Guest struct {
	conn          net.Conn
	name          string
	info          *Info
	authenticated bool

	wmu sync.Mutex // one frame written at a time

	mu       sync.Mutex
	handlers map[uint32]handler
	next     uint32
	err      error
	done     chan struct{}
	credit   map[uint32]uint32 // WINDOW returns not yet written
	creditCh chan struct{}
}

// Info is the agent's WELCOME.
func (g *Guest) Info() *Info { return g.info }

// Authenticated reports whether the agent proved it holds the token.
func (g *Guest) Authenticated() bool { return g.authenticated }

// Done is closed when the connection has ended, for whatever reason; Err then says why.
func (g *Guest) Done() <-chan struct{} { return g.done }

// Err is the connection's failure (ErrClosed after Close), nil while it is up.
func (g *Guest) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// Close ends the connection; everything pending returns an ECLOSED *Error. Detached jobs run on.
func (g *Guest) Close() error {
	g.fail(errorf("ECLOSED", g.name+": connection closed by the host", nil))
	return nil
}

// wrap turns a codec or I/O error into the connection's *Error.
func (g *Guest) wrap(err error) error {
	var e *Error
	var pe *wire.ProtocolError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &pe):
		what := "malformed frame from the agent"
		if pe.Code == "EFLOW" {
			what = "the agent broke flow control"
		}
		return errorf(pe.Code, fmt.Sprintf("%s: %s: %s", g.name, what, pe.Msg), err)
	case errors.Is(err, io.EOF):
		return errorf("ECLOSED", g.name+": the agent closed the connection", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf("ECLOSED", g.name+": the agent closed the connection in the middle of a frame", err)
	}
	return errorf("ECLOSED", fmt.Sprintf("%s: %v", g.name, err), err)
}

// fail ends the connection: the first failure wins and reaches every pending request.
func (g *Guest) fail(err error) error {
	g.mu.Lock()
	if g.err != nil {
		err = g.err
		g.mu.Unlock()
		return err
	}
	g.err = err
	hs := g.handlers
	g.handlers = map[uint32]handler{}
	close(g.done)
	g.mu.Unlock()
	g.conn.Close()
	for _, h := range hs {
		h.fail(err)
	}
	return err
}

func (g *Guest) readLoop(dec *wire.Decoder) {
	for {
		f, err := dec.Next()
		if err != nil {
			if errors.Is(err, io.EOF) && dec.Partial {
				err = io.ErrUnexpectedEOF
			}
			g.fail(g.wrap(err))
			return
		}
		if err := g.dispatch(f); err != nil {
			g.fail(g.wrap(err))
			return
		}
	}
}

func (g *Guest) dispatch(f wire.Frame) error {
	if f.ID != 0 {
		// Frames for an id the host does not hold are dropped unread: a guest cannot make the host keep
		// anything for ids of its choosing.
		g.mu.Lock()
		h := g.handlers[f.ID]
		g.mu.Unlock()
		if h == nil {
			return nil
		}
		return h.frame(f)
	}
	switch f.Type {
	case wire.Error:
		e := wire.ValidateError(f)
		return errorf(e.Code, fmt.Sprintf("%s: the agent reported %s: %s", g.name, e.Code, e.Message), nil)
	case wire.Welcome:
		return wire.Protof("a second WELCOME")
	}
	return wire.Protof("unexpected %v frame for id 0", f.Type)
}

// register gives h a fresh id: never 0, never one still open.
func (g *Guest) register(h handler) (uint32, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return 0, g.err
	}
	for g.next == 0 || g.handlers[g.next] != nil {
		g.next++
	}
	id := g.next
	g.next++
	g.handlers[id] = h
	return id, nil
}

// release ends an id: later frames for it are ignored, as the agent does.
func (g *Guest) release(id uint32) {
	g.mu.Lock()
	delete(g.handlers, id)
	delete(g.credit, id)
	g.mu.Unlock()
}

// send writes one frame; a write failure fails the connection.
func (g *Guest) send(t wire.Type, id uint32, payload []byte) error {
	if err := g.Err(); err != nil {
		return err
	}
	if err := g.write(wire.EncodeFrame(t, id, payload)); err != nil {
		return g.fail(g.wrap(err))
	}
	return nil
}

func (g *Guest) sendJSON(t wire.Type, id uint32, body any) error {
	p, err := wire.Marshal(body)
	if err != nil {
		return errorf("EINVAL", err.Error(), err)
	}
	if len(p) > wire.MaxPayload {
		return errorf("EINVAL", fmt.Sprintf("%v body of %d bytes exceeds a frame", t, len(p)), nil)
	}
	return g.send(t, id, p)
}

// returnCredit queues WINDOW(id, n) for the credit writer: never blocks, so a reader of output never waits
// on a connection the agent is not reading; queued credit is one number per id.
func (g *Guest) returnCredit(id uint32, n uint32) {
	g.mu.Lock()
	if g.err == nil && g.handlers[id] != nil {
		g.credit[id] += n
	}
	g.mu.Unlock()
	select {
	case g.creditCh <- struct{}{}:
	default:
	}
}

func (g *Guest) creditLoop() {
	for {
		select {
		case <-g.done:
			return
		case <-g.creditCh:
		}
		g.mu.Lock()
		batch := g.credit
		g.credit = map[uint32]uint32{}
		g.mu.Unlock()
		var out []byte
		for id, n := range batch {
			out = append(out, wire.EncodeWindow(id, n)...)
		}
		if len(out) > 0 {
			if err := g.write(out); err != nil {
				g.fail(g.wrap(err))
				return
			}
		}
	}
}

// inputWindow is the credit the host starts with for a stream it sends (stdin, PUT, PUTDIR, TCP). §7 says
// 262144; WELCOME also announces a window. Taking the smaller is right under either reading: it never
// overruns an agent that meant its WELCOME, nor one that follows §7.
func (g *Guest) inputWindow() uint32 { return min(g.info.Window, wire.DefaultWindow) }
