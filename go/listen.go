package vge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
)

// Listener waits for guests that dial the host (vsock-listen:, unix-listen:, fc-listen:).
type Listener struct {
	addr Address
	l    connListener
	opts Options
	tok  []byte
	once sync.Once
}

// Listen starts listening at a listen address. The token file, if any, is read now, once.
func Listen(ctx context.Context, addr string, opts *Options) (*Listener, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	if !a.IsListen() {
		return nil, errorf("EINVAL", addr+" is a dial address: use Dial", nil)
	}
	tok, err := opts.token()
	if err != nil {
		return nil, err
	}
	l, err := listenConn(a)
	if err != nil {
		return nil, err
	}
	o := Options{}
	if opts != nil {
		o = *opts
	}
	return &Listener{addr: a, l: l, opts: o, tok: tok}, nil
}

// Addr is the address listened on.
func (l *Listener) Addr() Address { return l.addr }

// AcceptConn waits for the next guest and returns its raw stream, before any protocol (package legacy).
func (l *Listener) AcceptConn(ctx context.Context) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := l.l.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil && errors.Is(r.err, net.ErrClosed) {
			return nil, errorf("ECLOSED", "listener "+l.addr.String()+" is closed", r.err)
		}
		return r.c, r.err
	case <-ctx.Done():
		// The pending Accept returns when the listener closes; a guest it accepts meanwhile is closed.
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// Accept waits for the next guest and says hello. A guest whose hello fails returns that error (log it
// and call Accept again: the listener goes on).
func (l *Listener) Accept(ctx context.Context) (*Guest, error) {
	c, err := l.AcceptConn(ctx)
	if err != nil {
		return nil, err
	}
	o := l.opts
	if o.Name == "" {
		o.Name = fmt.Sprintf("guest %s", l.addr)
	}
	return open(ctx, c, &o, l.tok)
}

// Close stops listening and removes the socket file of a Unix address.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		err = l.l.Close()
		if l.addr.Kind != "vsock-listen" {
			os.Remove(l.addr.ListenPath())
		}
	})
	return err
}
