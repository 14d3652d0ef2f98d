package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
)

// Token sizes (§11).
const (
	NonceSize     = 32
	ProofSize     = 32
	MinTokenBytes = 16
)

var (
	agentLabel = []byte("vge2-auth agent\x00")
	hostLabel  = []byte("vge2-auth host\x00")
	hexRE      = regexp.MustCompile(`^[0-9a-f]*$`)
)

// TokenFromFile is a token file's contents minus one trailing newline (LF or CR LF); where names the file in
// errors, which never show its bytes.
func TokenFromFile(contents []byte, where string) ([]byte, error) {
	t := contents
	if bytes.HasSuffix(t, []byte("\r\n")) {
		t = t[:len(t)-2]
	} else if bytes.HasSuffix(t, []byte("\n")) {
		t = t[:len(t)-1]
	}
	return CheckToken(t, "token file "+where)
}

// CheckToken refuses a token shorter than MinTokenBytes: one observed proof would let it be guessed offline.
func CheckToken(t []byte, where string) ([]byte, error) {
	if len(t) < MinTokenBytes {
		return nil, fmt.Errorf("%s: the token has %d bytes; at least %d are required (make one with: head -c 32 /dev/urandom | base64 > FILE)", where, len(t), MinTokenBytes)
	}
	return t, nil
}

func mac(label, token, hostNonce, agentNonce []byte) []byte {
	m := hmac.New(sha256.New, token)
	m.Write(label)
	m.Write(hostNonce)
	m.Write(agentNonce)
	return m.Sum(nil)
}

// AgentProof is HMAC-SHA256(token, "vge2-auth agent\0" ‖ Nh ‖ Na).
func AgentProof(token, hostNonce, agentNonce []byte) []byte {
	return mac(agentLabel, token, hostNonce, agentNonce)
}

// HostProof is HMAC-SHA256(token, "vge2-auth host\0" ‖ Nh ‖ Na).
func HostProof(token, hostNonce, agentNonce []byte) []byte {
	return mac(hostLabel, token, hostNonce, agentNonce)
}

// FromHex reads exactly 2·size lowercase hex digits, or an EAUTH error naming the field.
func FromHex(v *string, size int, field string) ([]byte, error) {
	if v == nil || len(*v) != 2*size || !hexRE.MatchString(*v) {
		return nil, Authf("%s must be %d lowercase hex digits", field, 2*size)
	}
	return hex.DecodeString(*v)
}

// ProofMatches compares in constant time.
func ProofMatches(expected, got []byte) bool { return hmac.Equal(expected, got) }
