package vge

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/vsock-guest-exec/vge-go/wire"
)

// TCPConn is a TCP connection the agent made inside the guest, carried on the v2 connection (§13). Reads
// return credit as they go and writes wait for the agent's, so neither side buffers more than one window.
type TCPConn struct {
	g      *Guest
	id     uint32
	win    *recvWindow
	in     *inbox
	out    *sendWindow
	target string
	opened chan struct{}
	closed chan struct{}

	mu       sync.Mutex
	openErr  error
	endErr   error
	ended    bool
	wroteEOF bool
	peer     string
	peerEOF  bool // only the connection's reader touches it
}

// DialTCP connects, from inside the guest, to host:port (the guest's 127.0.0.1 is its own). A refused
// target is a *RemoteError (ECONNREFUSED, ENOTFOUND, ...) and fails only this stream.
func (g *Guest) DialTCP(ctx context.Context, host string, port int) (*TCPConn, error) {
	if err := wire.CheckTCPTarget(host, port); err != nil {
		return nil, errorf("EINVAL", err.Error(), nil)
	}
	c := &TCPConn{g: g, out: newSendWindow(g.inputWindow()), target: net.JoinHostPort(host, strconv.Itoa(port)),
		opened: make(chan struct{}), closed: make(chan struct{})}
	c.win = &recvWindow{g: g, max: wire.DefaultWindow}
	c.in = newInbox(c.win)
	id, err := g.register(c)
	if err != nil {
		return nil, err
	}
	c.id, c.win.id = id, id
	if err := g.sendJSON(wire.TCPOpen, id, wire.TCPOpenBody{Host: host, Port: port}); err != nil {
		return nil, err
	}
	select {
	case <-c.opened:
	case <-ctx.Done():
		c.Close()
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.openErr != nil {
		return nil, c.openErr
	}
	return c, nil
}

func (c *TCPConn) frame(f wire.Frame) error {
	switch f.Type {
	case wire.TCPOpened:
		var b struct {
			Address string `json:"address"`
			Port    int    `json:"port"`
		}
		if err := wire.Object(f, &b); err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		select {
		case <-c.opened:
			return wire.Protof("a second TCP_OPENED for id %d", f.ID)
		default:
		}
		c.peer = wire.Printable(net.JoinHostPort(b.Address, strconv.Itoa(b.Port)), 300)
		close(c.opened)
	case wire.TCPData:
		if c.peerEOF {
			return wire.Protof("TCP_DATA after TCP_EOF on id %d", f.ID)
		}
		if err := c.win.receive(len(f.Payload)); err != nil {
			return err
		}
		c.in.push(f)
	case wire.TCPEOF:
		c.peerEOF = true
		c.in.end(nil)
	case wire.Window:
		n, err := wire.DecodeWindow(f)
		if err != nil {
			return err
		}
		return c.out.give(n)
	case wire.TCPClosed:
		r, err := wire.ValidateTCPClosed(f)
		if err != nil {
			return err
		}
		var e error
		if !r.OK {
			e = &RemoteError{Op: "tcp", Path: c.target, Errno: r.Errno, Message: r.Message}
		}
		c.end(e)
	default:
		return wire.Protof("%v frame for a TCP stream", f.Type)
	}
	return nil
}

func (c *TCPConn) end(err error) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended, c.endErr = true, err
	select {
	case <-c.opened:
	default:
		c.openErr = err
		if err == nil {
			c.openErr = &RemoteError{Op: "tcp", Path: c.target, Errno: "ECONNRESET", Message: "closed before it opened"}
		}
		close(c.opened)
	}
	close(c.closed)
	c.mu.Unlock()
	c.g.release(c.id)
	c.in.end(err)
	c.out.close(errorf("EPIPE", "tcp "+c.target+": the stream has ended", err))
}

func (c *TCPConn) fail(err error) { c.end(err) }

// Read reads what the guest's peer sent; io.EOF after its half-close.
func (c *TCPConn) Read(b []byte) (int, error) { return c.in.Read(b) }

// Write sends within the agent's credit.
func (c *TCPConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	eof := c.wroteEOF
	c.mu.Unlock()
	if eof {
		return 0, errorf("EPIPE", "tcp "+c.target+": write after CloseWrite", nil)
	}
	done := 0
	for len(b) > 0 {
		n, err := c.out.take(context.Background(), min(len(b), wire.Chunk), false)
		if err != nil {
			return done, err
		}
		if err := c.g.send(wire.TCPData, c.id, b[:n]); err != nil {
			return done, err
		}
		b, done = b[n:], done+n
	}
	return done, nil
}

// CloseWrite half-closes: the guest's peer reads EOF and may still answer.
func (c *TCPConn) CloseWrite() error {
	c.mu.Lock()
	if c.wroteEOF || c.ended {
		c.mu.Unlock()
		return nil
	}
	c.wroteEOF = true
	c.mu.Unlock()
	return c.g.send(wire.TCPEOF, c.id, nil)
}

// Close drops the stream at once (TCP_RESET) unless it has already ended both ways.
func (c *TCPConn) Close() error {
	c.in.drop()
	c.mu.Lock()
	ended := c.ended
	c.mu.Unlock()
	if ended {
		return nil
	}
	err := c.g.send(wire.TCPReset, c.id, nil)
	c.end(nil)
	return err
}

// Closed is closed when the stream has ended (TCP_CLOSED, a reset, or the connection's end); Err says how.
func (c *TCPConn) Closed() <-chan struct{} { return c.closed }

// Err is nil for a clean end, a *RemoteError (ECONNRESET, ...) otherwise.
func (c *TCPConn) Err() error { c.mu.Lock(); defer c.mu.Unlock(); return c.endErr }

// TCPAddr is an endpoint of a stream inside the guest.
type TCPAddr struct{ Addr string }

func (a TCPAddr) Network() string { return "vge-tcp" }
func (a TCPAddr) String() string  { return a.Addr }

func (c *TCPConn) LocalAddr() net.Addr { return TCPAddr{fmt.Sprintf("%s#%d", c.g.name, c.id)} }
func (c *TCPConn) RemoteAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.peer != "" {
		return TCPAddr{c.peer}
	}
	return TCPAddr{c.target}
}

func (c *TCPConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}
func (c *TCPConn) SetReadDeadline(t time.Time) error  { c.in.dl.set(t); return nil }
func (c *TCPConn) SetWriteDeadline(t time.Time) error { c.out.dl.set(t); return nil }

var _ net.Conn = (*TCPConn)(nil)
