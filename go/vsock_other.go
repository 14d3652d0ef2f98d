//go:build !linux

package vge

import (
	"context"
	"net"
)

func dialVsock(ctx context.Context, cid, port uint32) (net.Conn, error) {
	return nil, errorf("ENOTSUP", "AF_VSOCK exists on Linux only; use a unix: or fc: address", nil)
}

func listenVsock(cid, port uint32) (connListener, error) {
	return nil, errorf("ENOTSUP", "AF_VSOCK exists on Linux only; use a unix-listen: or fc-listen: address", nil)
}
