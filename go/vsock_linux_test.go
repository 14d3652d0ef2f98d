//go:build linux

package vge

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The vsock sockaddr bytes only: this machine's AF_VSOCK is never dialed.
func TestSockaddrVM(t *testing.T) {
	b := sockaddrVM(3, 1024)
	want := make([]byte, 16)
	binary.NativeEndian.PutUint16(want[0:], 40)
	binary.NativeEndian.PutUint32(want[4:], 1024)
	binary.NativeEndian.PutUint32(want[8:], 3)
	if !bytes.Equal(b[:], want) {
		t.Fatalf("% x", b)
	}
	if a, err := ParseAddress("vsock-listen:5"); err != nil || sockaddrVM(a.CID, a.Port)[8] != 0xff {
		t.Fatal("CID any")
	}
}
