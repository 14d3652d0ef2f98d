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
	"time"

	"github.com/vsock-guest-exec/vge-go/wire"
)

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
