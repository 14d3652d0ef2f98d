package vge

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	long := "/" + strings.Repeat("p", 106)
	good := []struct {
		in   string
		want Address
		back string
	}{
		{"vsock:3:1024", Address{Kind: "vsock", CID: 3, Port: 1024}, ""},
		{"vsock-listen:1024", Address{Kind: "vsock-listen", CID: CIDAny, Port: 1024}, ""},
		{"vsock-listen:-1:1024", Address{Kind: "vsock-listen", CID: CIDAny, Port: 1024}, "vsock-listen:1024"},
		{"vsock-listen:2:5", Address{Kind: "vsock-listen", CID: 2, Port: 5}, ""},
		{"unix:/run/a:b.sock", Address{Kind: "unix", Path: "/run/a:b.sock"}, ""},
		{"unix-listen:rel.sock", Address{Kind: "unix-listen", Path: "rel.sock"}, ""},
		{"unix:" + long, Address{Kind: "unix", Path: long}, ""},
		{"fc:/run/fc:x/v.sock:1024", Address{Kind: "fc", Path: "/run/fc:x/v.sock", Port: 1024}, ""},
		{"fc-listen:/run/v.sock:52", Address{Kind: "fc-listen", Path: "/run/v.sock", Port: 52}, ""},
	}
	for _, c := range good {
		a, err := ParseAddress(c.in)
		if err != nil || a != c.want {
			t.Errorf("%s: %+v %v", c.in, a, err)
		}
		back := c.back
		if back == "" {
			back = c.in
		}
		if a.String() != back {
			t.Errorf("%s: formats as %s", c.in, a)
		}
	}
	if a, _ := ParseAddress("fc-listen:/run/v.sock:52"); a.ListenPath() != "/run/v.sock_52" || !a.IsListen() {
		t.Error(a.ListenPath())
	}
	for _, bad := range []string{"", "vsock", "vsock:3", "vsock:3:4:5", "vsock:-1:5", "vsock:4294967295:1", "vsock:1:4294967295",
		"vsock:x:1", "vsock:+1:1", "vsock-listen:1:2:3", "unix:", "unix:a\x00b", "unix:" + long + "x", "fc:/x", "fc:/x:",
		"fc:/x:port", "fc-listen:" + long[:103] + ":12345", "tcp:1.2.3.4:80"} {
		if _, err := ParseAddress(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
