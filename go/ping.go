package vge

import (
	"context"
	"fmt"
	"time"

	"github.com/vsock-guest-exec/vge-go/wire"
)

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
