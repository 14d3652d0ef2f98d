//go:build linux

package vge

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

const afVsock = 40 // AF_VSOCK

// sockaddrVM is struct sockaddr_vm: u16 family, u16 reserved, u32 port, u32 cid, u8 flags, 3 zero bytes.
func sockaddrVM(cid, port uint32) [16]byte {
	var b [16]byte
	binary.NativeEndian.PutUint16(b[0:], afVsock)
	binary.NativeEndian.PutUint32(b[4:], port)
	binary.NativeEndian.PutUint32(b[8:], cid)
	return b
}

// VsockAddr is a vsock endpoint.
type VsockAddr struct{ CID, Port uint32 }

func (a VsockAddr) Network() string { return "vsock" }
func (a VsockAddr) String() string  { return fmt.Sprintf("vsock:%d:%d", a.CID, a.Port) }

func vsockSocket() (int, error) {
	fd, err := syscall.Socket(afVsock, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket(AF_VSOCK)", err)
	}
	return fd, nil
}

func rawSockaddr(fd int, call uintptr, sa *[16]byte) syscall.Errno {
	_, _, e := syscall.Syscall(call, uintptr(fd), uintptr(unsafe.Pointer(sa)), 16)
	return e
}

// vsockConn is an AF_VSOCK stream on the runtime's poller (os.File), as net.Conn.
type vsockConn struct {
	*os.File
	local, remote VsockAddr
}

func (c *vsockConn) LocalAddr() net.Addr  { return c.local }
func (c *vsockConn) RemoteAddr() net.Addr { return c.remote }
func (c *vsockConn) CloseWrite() error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	rc.Control(func(fd uintptr) { serr = syscall.Shutdown(int(fd), syscall.SHUT_WR) })
	return serr
}

// dialVsock connects to (cid, port). Never called by this module's tests: the development machine is a VM
// whose AF_VSOCK reaches its own hypervisor.
func dialVsock(ctx context.Context, cid, port uint32) (net.Conn, error) {
	fd, err := vsockSocket()
	if err != nil {
		return nil, err
	}
	sa := sockaddrVM(cid, port)
	if e := rawSockaddr(fd, syscall.SYS_CONNECT, &sa); e != 0 && e != syscall.EINPROGRESS {
		syscall.Close(fd)
		return nil, os.NewSyscallError("connect", e)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("vsock:%d:%d", cid, port))
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		f.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	var soerr int
	werr := rc.Write(func(fd uintptr) bool {
		soerr, err = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		return true
	})
	if werr == nil && err == nil && soerr != 0 {
		err = os.NewSyscallError("connect", syscall.Errno(soerr))
	} else if werr != nil {
		err = werr
		if ctx.Err() != nil {
			err = ctx.Err()
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	f.SetWriteDeadline(time.Time{})
	return &vsockConn{File: f, remote: VsockAddr{cid, port}}, nil
}

type vsockListener struct {
	f    *os.File
	addr VsockAddr
}

func listenVsock(cid, port uint32) (connListener, error) {
	fd, err := vsockSocket()
	if err != nil {
		return nil, err
	}
	sa := sockaddrVM(cid, port)
	if e := rawSockaddr(fd, syscall.SYS_BIND, &sa); e != 0 {
		syscall.Close(fd)
		return nil, os.NewSyscallError("bind", e)
	}
	if err := syscall.Listen(fd, 64); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("listen", err)
	}
	return &vsockListener{f: os.NewFile(uintptr(fd), "vsock-listen"), addr: VsockAddr{cid, port}}, nil
}

func (l *vsockListener) Accept() (net.Conn, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var sa [16]byte
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		n := uint32(16)
		r, _, e := syscall.Syscall6(syscall.SYS_ACCEPT4, fd, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)), syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, 0, 0)
		if e == syscall.EAGAIN {
			return false
		}
		nfd, aerr = int(r), nil
		if e != 0 {
			aerr = os.NewSyscallError("accept4", e)
		}
		return true
	})
	if err == nil {
		err = aerr
	}
	if err != nil {
		return nil, err
	}
	peer := VsockAddr{CID: binary.NativeEndian.Uint32(sa[8:]), Port: binary.NativeEndian.Uint32(sa[4:])}
	return &vsockConn{File: os.NewFile(uintptr(nfd), peer.String()), local: l.addr, remote: peer}, nil
}

func (l *vsockListener) Close() error   { return l.f.Close() }
func (l *vsockListener) Addr() net.Addr { return l.addr }
