// Package legacy speaks the original vsock_guest_exec formats (PROTOCOL.md §1), for agents older than
// 0.2.0 and for boot steps that still use them. They carry no results: the agent sends nothing, and the
// only signal is the connection closing. Get the connection from vge.DialConn or vge.Listener.AcceptConn.
package legacy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// MaxCommand is the longest command either format accepts.
const MaxCommand = 2048

type closeWriter interface{ CloseWrite() error }

// Disposable sends one command in the disposable format and waits until the agent closes the connection,
// which it does once the command has finished (the socket stays open in the shell the agent execs). The
// command ends at the half-close this sends (or a NUL byte, or the agent's 250 ms pause). Closes conn.
func Disposable(ctx context.Context, conn net.Conn, command string) error {
	defer conn.Close()
	if len(command) > MaxCommand {
		return fmt.Errorf("legacy: the command is %d bytes; the agent takes at most %d", len(command), MaxCommand)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(conn, command); err != nil {
		return ctxErr(ctx, err)
	}
	if cw, ok := conn.(closeWriter); ok {
		if err := cw.CloseWrite(); err != nil {
			return ctxErr(ctx, err)
		}
	}
	// The agent never writes: any byte means this is not an original-format agent.
	var b [1]byte
	n, err := conn.Read(b[:])
	if n > 0 {
		return errors.New("legacy: the peer sent data; it is not an original-format agent")
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return ctxErr(ctx, err)
	}
	return nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Persistent sends length-prefixed commands (u16 little-endian length, then the command) that the agent
// runs one at a time, in order, with the guest console as stdio.
type Persistent struct {
	conn net.Conn
}

// NewPersistent speaks the persistent format on conn.
func NewPersistent(conn net.Conn) *Persistent { return &Persistent{conn: conn} }

// Send writes one command. A command of 0 bytes runs nothing; over MaxCommand is refused here.
func (p *Persistent) Send(command string) error {
	if len(command) > MaxCommand {
		return fmt.Errorf("legacy: the command is %d bytes; the agent takes at most %d", len(command), MaxCommand)
	}
	frame := make([]byte, 2+len(command))
	binary.LittleEndian.PutUint16(frame, uint16(len(command)))
	copy(frame[2:], command)
	_, err := p.conn.Write(frame)
	return err
}

// Close half-closes, then waits (until ctx ends) for the agent to close its side: it has run every command
// sent. Closes the connection.
func (p *Persistent) Close(ctx context.Context) error {
	defer p.conn.Close()
	if cw, ok := p.conn.(closeWriter); ok {
		if err := cw.CloseWrite(); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, func() { p.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	_, err := io.Copy(io.Discard, p.conn)
	return ctxErr(ctx, err)
}
