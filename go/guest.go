package vge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/vsock-guest-exec/vge-go/wire"
)

var osErrDeadlineExceeded = os.ErrDeadlineExceeded

// Options for Dial, Listen and Open.
type Options struct {
	// Token is the shared secret of an agent started with --token-file (PROTOCOL.md §11), used as is.
	Token []byte
	// TokenFile is read once; one trailing newline is not part of the token.
	TokenFile string
	// HelloTimeout bounds the hello (default 10 s).
	HelloTimeout time.Duration
	// Client is sent in HELLO (default "vge-go/0.2.0").
	Client string
	// Name names the guest in errors (default: the address).
	Name string
}

func (o *Options) token() ([]byte, error) {
	if o == nil {
		return nil, nil
	}
	if o.TokenFile != "" {
		b, err := os.ReadFile(o.TokenFile)
		if err != nil {
			return nil, errorf("EINVAL", fmt.Sprintf("token file %s: %v", o.TokenFile, errors.Unwrap(err)), nil)
		}
		t, err := wire.TokenFromFile(b, o.TokenFile)
		if err != nil {
			return nil, errorf("EINVAL", err.Error(), nil)
		}
		return t, nil
	}
	if o.Token != nil {
		t, err := wire.CheckToken(o.Token, "token")
		if err != nil {
			return nil, errorf("EINVAL", err.Error(), nil)
		}
		return t, nil
	}
	return nil, nil
}

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

// Dial connects to a guest at a dial address (vsock:CID:PORT, unix:PATH, fc:UDS_PATH:PORT) and says hello.
func Dial(ctx context.Context, addr string, opts *Options) (*Guest, error) {
	tok, err := opts.token()
	if err != nil {
		return nil, err
	}
	c, err := DialConn(ctx, addr)
	if err != nil {
		var e *Error
		if errors.As(err, &e) || ctx.Err() != nil {
			return nil, err
		}
		return nil, errorf("ECLOSED", fmt.Sprintf("guest %s: %v", addr, err), err)
	}
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = "guest " + addr
	}
	return open(ctx, c, &o, tok)
}

// Open says hello over a stream that is already connected (a socketpair, a custom transport) and waits for
// the WELCOME. conn is closed when the hello fails and when the Guest is closed.
func Open(ctx context.Context, conn net.Conn, opts *Options) (*Guest, error) {
	tok, err := opts.token()
	if err != nil {
		conn.Close()
		return nil, err
	}
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.Name == "" {
		o.Name = "guest"
	}
	return open(ctx, conn, &o, tok)
}

func open(ctx context.Context, conn net.Conn, o *Options, tok []byte) (*Guest, error) {
	g := &Guest{conn: conn, name: o.Name, handlers: map[uint32]handler{}, next: 1, done: make(chan struct{}),
		credit: map[uint32]uint32{}, creditCh: make(chan struct{}, 1)}
	timeout := o.HelloTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	conn.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	dec := wire.NewDecoder(conn)
	info, err := g.hello(dec, o, tok)
	if !stop() || ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, errorf("EHELLO", fmt.Sprintf("%s: no WELCOME within %v; an agent older than 0.2.0 speaks only the original format (package legacy)", g.name, timeout), err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errorf("EHELLO", fmt.Sprintf("%s: the agent closed the connection without answering the hello; an agent older than 0.2.0 does that (package legacy)", g.name), err)
		}
		return nil, g.wrap(err)
	}
	conn.SetDeadline(time.Time{})
	g.info, g.authenticated = info, tok != nil
	go g.readLoop(dec)
	go g.creditLoop()
	return g, nil
}

func (g *Guest) write(b []byte) error {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	_, err := g.conn.Write(b)
	return err
}

func (g *Guest) hello(dec *wire.Decoder, o *Options, tok []byte) (*Info, error) {
	client := o.Client
	if client == "" {
		client = "vge-go/0.2.0"
	}
	h := wire.HelloBody{Versions: []int{wire.Version}, Client: client}
	var hostNonce []byte
	if tok != nil {
		hostNonce = make([]byte, wire.NonceSize)
		rand.Read(hostNonce)
		h.Auth = &wire.NonceAuth{Nonce: hex.EncodeToString(hostNonce)}
	}
	frame, err := wire.EncodeJSON(wire.Hello, 0, h)
	if err != nil {
		return nil, err
	}
	if err := g.write(append(wire.Magic[:], frame...)); err != nil {
		return nil, err
	}
	proved := false
	for {
		f, err := dec.Next()
		if err != nil {
			return nil, err
		}
		switch {
		case f.ID != 0:
			return nil, wire.Protof("%v frame for id %d before the WELCOME", f.Type, f.ID)
		case f.Type == wire.Error:
			e := wire.ValidateError(f)
			return nil, errorf(e.Code, fmt.Sprintf("%s: the agent reported %s: %s", g.name, e.Code, e.Message), nil)
		case f.Type != wire.Welcome:
			return nil, wire.Protof("%v frame before the WELCOME", f.Type)
		}
		var a struct {
			Auth *struct{ Nonce, Proof *string }
		}
		if err := wire.Object(f, &a); err != nil {
			return nil, err
		}
		if tok == nil && a.Auth != nil {
			return nil, errorf("EAUTH", g.name+": the agent requires authentication; give the host its token (Options.TokenFile)", nil)
		}
		if tok != nil && !proved {
			if a.Auth == nil {
				return nil, errorf("EAUTH", g.name+": the agent did not prove it holds the token (an agent without --token-file, or older than 0.2.0); refused", nil)
			}
			agentNonce, err := wire.FromHex(a.Auth.Nonce, wire.NonceSize, "WELCOME auth.nonce")
			if err != nil {
				return nil, err
			}
			proof, err := wire.FromHex(a.Auth.Proof, wire.ProofSize, "WELCOME auth.proof")
			if err != nil {
				return nil, err
			}
			if !wire.ProofMatches(wire.AgentProof(tok, hostNonce, agentNonce), proof) {
				return nil, errorf("EAUTH", g.name+": the agent's proof is wrong: it does not hold this token; refused", nil)
			}
			reply, _ := wire.EncodeJSON(wire.Auth, 0, wire.AuthBody{Proof: hex.EncodeToString(wire.HostProof(tok, hostNonce, agentNonce))})
			if err := g.write(reply); err != nil {
				return nil, err
			}
			proved = true
			continue
		}
		return wire.ValidateWelcome(f)
	}
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

// Ping measures a round trip to the agent.
func (g *Guest) Ping(ctx context.Context) (time.Duration, error) {
	p := &pingReq{ch: make(chan error, 1)}
	id, err := g.register(p)
	if err != nil {
		return 0, err
	}
	defer g.release(id)
	start := time.Now()
	p.payload = []byte(fmt.Sprintf("%d", start.UnixNano()))
	if err := g.send(wire.Ping, id, p.payload); err != nil {
		return 0, err
	}
	select {
	case err := <-p.ch:
		return time.Since(start), err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

type pingReq struct {
	payload []byte
	ch      chan error
}

func (p *pingReq) frame(f wire.Frame) error {
	if f.Type != wire.Pong {
		return wire.Protof("%v frame for a PING", f.Type)
	}
	var err error
	if string(f.Payload) != string(p.payload) {
		err = wire.Protof("PONG carries another payload than the PING")
	}
	select {
	case p.ch <- err:
	default:
	}
	return err
}

func (p *pingReq) fail(err error) {
	select {
	case p.ch <- err:
	default:
	}
}

// inputWindow is the credit the host starts with for a stream it sends (stdin, PUT, PUTDIR, TCP). §7 says
// 262144; WELCOME also announces a window. Taking the smaller is right under either reading: it never
// overruns an agent that meant its WELCOME, nor one that follows §7.
func (g *Guest) inputWindow() uint32 { return min(g.info.Window, wire.DefaultWindow) }
