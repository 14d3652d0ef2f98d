package main

import (
	"errors"
	"testing"

	vge "github.com/vsock-guest-exec/vge-go"
)

// A bad address fails at once with EINVAL, before the minute of retries meant for a guest still booting.
func TestBadAddressFailsAtOnce(t *testing.T) {
	err := run("nonsense", nil)
	var e *vge.Error
	if !errors.As(err, &e) || e.Code != "EINVAL" {
		t.Fatalf("want EINVAL, got %v", err)
	}
}
