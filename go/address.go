package vge

import (
	"fmt"
	"strconv"
	"strings"
)

// Address is where a guest is: every form of the TypeScript library and vge (README's address table).
//
//	vsock:CID:PORT            dial an agent listening on AF_VSOCK (Linux)
//	vsock-listen:[CID:]PORT   wait on AF_VSOCK for agents that dial the host (QEMU vhost-vsock)
//	unix:PATH                 dial a Unix socket where an agent or a proxy listens
//	unix-listen:PATH          wait on a Unix socket (vfkit/krunkit/libkrun per-port sockets)
//	fc:UDS_PATH:PORT          Firecracker / Cloud Hypervisor / vhost-device-vsock: CONNECT PORT\n, OK ...\n
//	fc-listen:UDS_PATH:PORT   unix-listen:UDS_PATH_PORT, where those VMMs forward guest port PORT
type Address struct {
	Kind string // "vsock", "vsock-listen", "unix", "unix-listen", "fc", "fc-listen"
	CID  uint32 // vsock forms; CIDAny for vsock-listen without a CID
	Port uint32 // vsock and fc forms
	Path string // unix and fc forms
}

// CIDAny is VMADDR_CID_ANY, written -1 in addresses.
const CIDAny = 0xffffffff

// sun_path holds 108 bytes; one is kept for the terminator.
const unixPathMax = 107

const forms = "vsock:CID:PORT, vsock-listen:[CID:]PORT, unix:PATH, unix-listen:PATH, fc:UDS_PATH:PORT, fc-listen:UDS_PATH:PORT"

// ParseAddress parses one address; anything not understood is an *Error EINVAL saying what was expected.
func ParseAddress(text string) (Address, error) {
	bad := func(why string) (Address, error) {
		return Address{}, errorf("EINVAL", fmt.Sprintf("bad address %q: %s", text, why), nil)
	}
	u32 := func(what, v string, anyOK bool) (uint32, error) {
		if anyOK && v == "-1" {
			return CIDAny, nil
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0xffffffff || v == "" || v[0] == '+' {
			_, e := bad(fmt.Sprintf("%s must be a whole number 0..%d, got %q", what, uint32(0xfffffffe), v))
			return 0, e
		}
		return uint32(n), nil
	}
	path := func(p string) error {
		switch {
		case p == "":
			_, e := bad("the socket path is empty")
			return e
		case strings.IndexByte(p, 0) >= 0:
			_, e := bad("the socket path contains a NUL byte")
			return e
		case len(p) > unixPathMax:
			_, e := bad(fmt.Sprintf("the socket path is %d bytes; Unix sockets allow %d", len(p), unixPathMax))
			return e
		}
		return nil
	}
	scheme, rest, ok := strings.Cut(text, ":")
	if !ok {
		return bad("expected one of " + forms)
	}
	a := Address{Kind: scheme}
	var err error
	switch scheme {
	case "vsock":
		parts := strings.Split(rest, ":")
		if len(parts) != 2 {
			return bad("expected vsock:CID:PORT")
		}
		if a.CID, err = u32("CID", parts[0], false); err == nil {
			a.Port, err = u32("port", parts[1], false)
		}
	case "vsock-listen":
		parts := strings.Split(rest, ":")
		if len(parts) > 2 {
			return bad("expected vsock-listen:PORT or vsock-listen:CID:PORT")
		}
		a.CID = CIDAny
		if len(parts) == 2 {
			a.CID, err = u32("CID", parts[0], true)
		}
		if err == nil {
			a.Port, err = u32("port", parts[len(parts)-1], false)
		}
	case "unix", "unix-listen":
		a.Path, err = rest, path(rest)
	case "fc", "fc-listen":
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return bad("expected UDS_PATH:PORT")
		}
		a.Path = rest[:i]
		if err = path(a.Path); err == nil {
			a.Port, err = u32("port", rest[i+1:], false)
		}
		if err == nil && scheme == "fc-listen" {
			err = path(a.ListenPath())
		}
	default:
		return bad(fmt.Sprintf("unknown kind %q; expected one of %s", scheme, forms))
	}
	if err != nil {
		return Address{}, err
	}
	return a, nil
}

// IsListen reports whether the address waits for guests to dial in.
func (a Address) IsListen() bool { return strings.HasSuffix(a.Kind, "-listen") }

// ListenPath is the socket file a fc-listen address listens on: Firecracker's uds_path + "_" + port; the
// path itself for unix-listen.
func (a Address) ListenPath() string {
	if a.Kind == "fc-listen" {
		return fmt.Sprintf("%s_%d", a.Path, a.Port)
	}
	return a.Path
}

func (a Address) String() string {
	switch a.Kind {
	case "vsock":
		return fmt.Sprintf("vsock:%d:%d", a.CID, a.Port)
	case "vsock-listen":
		if a.CID == CIDAny {
			return fmt.Sprintf("vsock-listen:%d", a.Port)
		}
		return fmt.Sprintf("vsock-listen:%d:%d", a.CID, a.Port)
	case "fc", "fc-listen":
		return fmt.Sprintf("%s:%s:%d", a.Kind, a.Path, a.Port)
	}
	return a.Kind + ":" + a.Path
}
