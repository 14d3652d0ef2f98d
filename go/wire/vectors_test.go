package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// The vectors are the repository's reference (test/vectors/v2.json), read from the tree, never copied.
type vectorFile struct {
	MagicHex   string `json:"magic_hex"`
	MaxPayload int    `json:"max_payload"`
	Vectors    []struct {
		Name    string          `json:"name"`
		Type    string          `json:"type"`
		ID      uint32          `json:"id"`
		Hex     string          `json:"hex"`
		JSON    json.RawMessage `json:"json"`
		DataHex *string         `json:"data_hex"`
		Credit  *uint32         `json:"credit"`
	} `json:"vectors"`
	Invalid []struct {
		Name, Hex, Reason string
	} `json:"invalid"`
	InvalidEntries []struct {
		Name, Hex string
	} `json:"invalid_entries"`
	Auth map[string]string `json:"auth"`
}

func loadVectors(t testing.TB) vectorFile {
	b, err := os.ReadFile("../../test/vectors/v2.json")
	if err != nil {
		t.Fatalf("reading the vectors: %v", err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// What the host sends: decoding into our request type and encoding again gives the vector's exact bytes.
var hostBodies = map[Type]func() any{
	Hello: func() any { return new(HelloBody) }, Auth: func() any { return new(AuthBody) },
	Exec: func() any { return new(ExecBody) }, Signal: func() any { return new(SignalBody) },
	Resize: func() any { return new(ResizeBody) }, List: func() any { return new(struct{}) },
	Attach: func() any { return new(AttachBody) }, Kill: func() any { return new(KillBody) },
	Put: func() any { return new(PutBody) }, Get: func() any { return new(GetBody) },
	PutDir: func() any { return new(PathBody) }, GetDir: func() any { return new(PathBody) },
	TCPOpen: func() any { return new(TCPOpenBody) }, DirEntry: func() any { return new(Entry) },
}

func TestVectors(t *testing.T) {
	v := loadVectors(t)
	if got := hex.EncodeToString(Magic[:]); got != v.MagicHex {
		t.Fatalf("magic %s, vectors say %s", got, v.MagicHex)
	}
	if v.MaxPayload != MaxPayload {
		t.Fatalf("max payload %d, vectors say %d", MaxPayload, v.MaxPayload)
	}
	if len(v.Vectors) < 50 {
		t.Fatalf("only %d vectors", len(v.Vectors))
	}
	for _, vec := range v.Vectors {
		t.Run(vec.Name, func(t *testing.T) {
			raw := unhex(t, vec.Hex)
			f, err := DecodeFrame(raw)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			want, ok := TypeByName(vec.Type)
			if !ok || f.Type != want || f.ID != vec.ID {
				t.Fatalf("got %v id %d, want %s id %d", f.Type, f.ID, vec.Type, vec.ID)
			}
			if !bytes.Equal(EncodeFrame(f.Type, f.ID, f.Payload), raw) {
				t.Fatal("re-encoding differs")
			}
			if vec.DataHex != nil && !bytes.Equal(f.Payload, unhex(t, *vec.DataHex)) {
				t.Fatal("payload differs from data_hex")
			}
			if vec.Credit != nil {
				n, err := DecodeWindow(f)
				if err != nil || n != *vec.Credit || !bytes.Equal(EncodeWindow(f.ID, n), raw) {
					t.Fatalf("window %d %v", n, err)
				}
			}
			if vec.JSON == nil {
				return
			}
			var a, b any
			json.Unmarshal(f.Payload, &a)
			json.Unmarshal(vec.JSON, &b)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("payload %s, json %s", f.Payload, vec.JSON)
			}
			if mk := hostBodies[f.Type]; mk != nil {
				body := mk()
				if err := json.Unmarshal(f.Payload, body); err != nil {
					t.Fatal(err)
				}
				enc, err := EncodeJSON(f.Type, f.ID, body)
				if err != nil || !bytes.Equal(enc, raw) {
					t.Fatalf("our encoding %s\n          vector %s (%v)", enc[HeaderSize:], f.Payload, err)
				}
				if e, ok := body.(*ExecBody); ok {
					if err := e.Check(); err != nil {
						t.Fatal(err)
					}
				}
				if e, ok := body.(*TCPOpenBody); ok {
					if err := CheckTCPTarget(e.Host, e.Port); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := validateAgentFrame(f); err != nil {
				t.Fatalf("the host refuses the vector: %v", err)
			}
		})
	}
}

// validateAgentFrame runs the check the host applies to each frame type an agent sends.
func validateAgentFrame(f Frame) error {
	var err error
	switch f.Type {
	case Welcome:
		if bytes.Contains(f.Payload, []byte(`"auth"`)) {
			var w struct {
				Auth struct{ Nonce, Proof *string }
			}
			if err = Object(f, &w); err == nil {
				if _, err = FromHex(w.Auth.Nonce, NonceSize, "nonce"); err == nil {
					_, err = FromHex(w.Auth.Proof, ProofSize, "proof")
				}
			}
		} else {
			_, err = ValidateWelcome(f)
		}
	case Started:
		_, err = ValidateStarted(f)
	case Exit:
		_, err = ValidateExit(f)
	case Listing:
		_, err = ValidateListing(f)
	case Attached:
		_, err = ValidateAttached(f)
	case Detached:
		_, err = ValidateDetached(f)
	case Result:
		if bytes.Contains(f.Payload, []byte(`"files"`)) || bytes.Contains(f.Payload, []byte(`"path"`)) {
			_, err = ValidateDirResult(f)
		} else {
			_, err = ValidateFileResult(f)
		}
	case TCPClosed:
		_, err = ValidateTCPClosed(f)
	case DirEntry:
		_, err = DecodeEntry(f)
	case Error:
		if e := ValidateError(f); e.Code == "EREMOTE" {
			err = errors.New("code not kept")
		}
	}
	return err
}

func TestInvalidVectors(t *testing.T) {
	v := loadVectors(t)
	for _, inv := range v.Invalid {
		_, err := DecodeFrame(unhex(t, inv.Hex))
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Code != "EPROTO" || !strings.Contains(pe.Msg, inv.Reason) {
			t.Errorf("%s: got %v", inv.Name, err)
		}
	}
	if len(v.InvalidEntries) < 10 {
		t.Fatalf("only %d invalid entries", len(v.InvalidEntries))
	}
	for _, inv := range v.InvalidEntries {
		f, err := DecodeFrame(unhex(t, inv.Hex))
		if err != nil {
			t.Fatalf("%s: frame: %v", inv.Name, err)
		}
		if e, err := DecodeEntry(f); err == nil {
			t.Errorf("%s: accepted %+v", inv.Name, e)
		}
	}
}

func TestAuthVectors(t *testing.T) {
	a := loadVectors(t).Auth
	tok, err := TokenFromFile(unhex(t, a["token_file_hex"]), "vectors")
	if err != nil || !bytes.Equal(tok, unhex(t, a["token_hex"])) {
		t.Fatalf("token %x %v", tok, err)
	}
	if !bytes.Equal(agentLabel, unhex(t, a["agent_label_hex"])) || !bytes.Equal(hostLabel, unhex(t, a["host_label_hex"])) {
		t.Fatal("labels differ")
	}
	hn, an := unhex(t, a["host_nonce_hex"]), unhex(t, a["agent_nonce_hex"])
	if got := AgentProof(tok, hn, an); !bytes.Equal(got, unhex(t, a["agent_proof_hex"])) {
		t.Fatalf("agent proof %x", got)
	}
	if got := HostProof(tok, hn, an); !bytes.Equal(got, unhex(t, a["host_proof_hex"])) {
		t.Fatalf("host proof %x", got)
	}
	if _, err := CheckToken([]byte("15 bytes only!!"), "x"); err == nil {
		t.Fatal("short token accepted")
	}
	if got, _ := TokenFromFile([]byte("0123456789abcdef\r\n"), "f"); string(got) != "0123456789abcdef" {
		t.Fatalf("CR LF not trimmed: %q", got)
	}
}
