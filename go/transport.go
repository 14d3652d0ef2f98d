package vge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"time"
)

// DialConn connects to a dial address (vsock:, unix:, fc:) and returns the raw stream, before any
// protocol: for Open, or for the original formats (package legacy).
func DialConn(ctx context.Context, addr string) (net.Conn, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	switch a.Kind {
	case "unix":
		var d net.Dialer
		return d.DialContext(ctx, "unix", a.Path)
	case "fc":
		return dialFirecracker(ctx, a)
	case "vsock":
		return dialVsock(ctx, a.CID, a.Port)
	}
	return nil, errorf("EINVAL", fmt.Sprintf("%s is a listen address: use Listen", addr), nil)
}

var okLine = regexp.MustCompile(`^OK [0-9]{1,10}\n$`)

// dialFirecracker: connect to the VMM's socket, write "CONNECT PORT\n", read "OK <hostport>\n" (§10).
// The reply is read a byte at a time so that nothing of the agent's stream is consumed with it.
func dialFirecracker(ctx context.Context, a Address) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", a.Path)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := fmt.Fprintf(c, "CONNECT %d\n", a.Port); err != nil {
		c.Close()
		return nil, err
	}
	line := make([]byte, 0, 32)
	var b [1]byte
	for len(line) < 32 {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			c.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, errorf("ECLOSED", fmt.Sprintf("%s: the VMM closed the connection after CONNECT %d (nothing listens on that guest port?)", a, a.Port), err)
		}
		line = append(line, b[0])
		if b[0] == '\n' {
			break
		}
	}
	if !okLine.Match(line) {
		c.Close()
		return nil, errorf("ECLOSED", fmt.Sprintf("%s: CONNECT %d answered %q, expected \"OK <port>\"", a, a.Port, string(line)), nil)
	}
	if !stop() {
		c.Close()
		return nil, ctx.Err()
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// connListener accepts raw connections from guests that dial the host.
type connListener interface {
	Accept() (net.Conn, error)
	Close() error
	Addr() net.Addr
}

func listenConn(a Address) (connListener, error) {
	switch a.Kind {
	case "unix-listen", "fc-listen":
		p := a.ListenPath()
		// A stale socket file left by a host that died is replaced; anything else at the path is not ours.
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.Dial("unix", p); err == nil {
				c.Close()
				return nil, errorf("EADDRINUSE", p+": another host listens there", nil)
			}
			os.Remove(p)
		}
		l, err := net.Listen("unix", p)
		if err != nil {
			if errors.Is(err, os.ErrExist) {
				return nil, errorf("EADDRINUSE", p+": the path exists", err)
			}
			return nil, err
		}
		return l, nil
	case "vsock-listen":
		return listenVsock(a.CID, a.Port)
	}
	return nil, errorf("EINVAL", a.String()+" is a dial address: use Dial", nil)
}
