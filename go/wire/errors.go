package wire

import "fmt"

// ProtocolError is a peer breaking the protocol: Code is what an ERROR frame carries (EPROTO, EFLOW,
// EAUTH, EVERSION, ...).
type ProtocolError struct {
	Code string
	Msg  string
}

func (e *ProtocolError) Error() string { return e.Msg }

// Protof makes an EPROTO error.
func Protof(format string, args ...any) error {
	return &ProtocolError{Code: "EPROTO", Msg: fmt.Sprintf(format, args...)}
}

// Flowf makes an EFLOW error (credit overrun, §7).
func Flowf(format string, args ...any) error {
	return &ProtocolError{Code: "EFLOW", Msg: fmt.Sprintf(format, args...)}
}

// Authf makes an EAUTH error (§11).
func Authf(format string, args ...any) error {
	return &ProtocolError{Code: "EAUTH", Msg: fmt.Sprintf(format, args...)}
}
