package wire

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// MaxTCPHost bounds TCP_OPEN's host (a DNS name is at most 253 characters).
const MaxTCPHost = 253

var labelRE = regexp.MustCompile(`^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$`)
var dottedRE = regexp.MustCompile(`^[\d.]+$`)

// CheckTCPTarget applies §13's rules: a DNS name, an IPv4 address or an IPv6 address without brackets or
// zone, and a port 1..65535.
func CheckTCPTarget(host string, port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("TCP_OPEN: port must be 1..65535, got %d", port)
	}
	if host == "" || len(host) > MaxTCPHost || strings.IndexByte(host, 0) >= 0 {
		return fmt.Errorf("TCP_OPEN: host must be 1..%d characters without NUL", MaxTCPHost)
	}
	if strings.Contains(host, ":") || dottedRE.MatchString(host) {
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("TCP_OPEN: host %q is not a valid IP address", host)
		}
		return nil
	}
	for _, l := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if !labelRE.MatchString(l) {
			return fmt.Errorf("TCP_OPEN: host %q is not a hostname or an IP address", host)
		}
	}
	return nil
}

// TCPClosedBody is TCP_CLOSED.
type TCPClosedBody struct {
	OK      bool   `json:"ok"`
	Errno   string `json:"errno,omitempty"`
	Message string `json:"message,omitempty"`
}

// ValidateTCPClosed checks TCP_CLOSED.
func ValidateTCPClosed(f Frame) (TCPClosedBody, error) {
	var raw struct {
		OK             *bool
		Errno, Message *string
	}
	if err := Object(f, &raw); err != nil {
		return TCPClosedBody{}, err
	}
	if raw.OK == nil {
		return TCPClosedBody{}, Protof("TCP_CLOSED: needs ok:true, or ok:false with errno and message")
	}
	if *raw.OK {
		return TCPClosedBody{OK: true}, nil
	}
	r, err := failure("TCP_CLOSED", raw.Errno, raw.Message)
	return TCPClosedBody{Errno: r.Errno, Message: r.Message}, err
}
