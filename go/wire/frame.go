// Package wire is the vsock-guest-exec protocol v2 codec (PROTOCOL.md §2–13): frame layout, the typed JSON
// bodies, their checks, the token proofs. It does no I/O beyond reading frames from an io.Reader, so a host,
// a fake agent in a test and a fuzzer all use the same code.
package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"
)

// Magic is what a host writes first to select v2: as an original persistent frame FF FF is length 65535,
// which that format never accepts, and 0xFF cannot begin a disposable shell command.
var Magic = [8]byte{0xff, 0xff, 'V', 'G', 'E', '2', '\r', '\n'}

const (
	// HeaderSize is u32 length, u8 type, u32 id.
	HeaderSize = 9
	// MaxPayload is the largest payload of one frame; a peer sending more is broken.
	MaxPayload = 256 * 1024
	// Chunk is the largest data payload a sender should put in one frame.
	Chunk = 64 * 1024
	// DefaultWindow is every stream's credit at the start (§7).
	DefaultWindow = 256 * 1024
	// Version is the protocol version this package speaks.
	Version = 2
)

// Type is a frame type (§3).
type Type uint8

const (
	Hello     Type = 0x01
	Welcome   Type = 0x02
	Auth      Type = 0x03
	Exec      Type = 0x10
	Started   Type = 0x11
	Stdin     Type = 0x12
	StdinEOF  Type = 0x13
	Stdout    Type = 0x14
	Stderr    Type = 0x15
	Signal    Type = 0x16
	Resize    Type = 0x17
	Exit      Type = 0x18
	Window    Type = 0x19
	List      Type = 0x1a
	Listing   Type = 0x1b
	Attach    Type = 0x1c
	Attached  Type = 0x1d
	Detached  Type = 0x1e
	Kill      Type = 0x1f
	Put       Type = 0x20
	Get       Type = 0x21
	FileData  Type = 0x22
	FileEnd   Type = 0x23
	Result    Type = 0x24
	PutDir    Type = 0x25
	GetDir    Type = 0x26
	DirEntry  Type = 0x27
	DirEnd    Type = 0x28
	Ping      Type = 0x30
	Pong      Type = 0x31
	TCPOpen   Type = 0x40
	TCPOpened Type = 0x41
	TCPData   Type = 0x42
	TCPEOF    Type = 0x43
	TCPReset  Type = 0x44
	TCPClosed Type = 0x45
	Error     Type = 0x7f
)

var typeNames = map[Type]string{
	Hello: "HELLO", Welcome: "WELCOME", Auth: "AUTH", Exec: "EXEC", Started: "STARTED", Stdin: "STDIN",
	StdinEOF: "STDIN_EOF", Stdout: "STDOUT", Stderr: "STDERR", Signal: "SIGNAL", Resize: "RESIZE", Exit: "EXIT",
	Window: "WINDOW", List: "LIST", Listing: "LISTING", Attach: "ATTACH", Attached: "ATTACHED",
	Detached: "DETACHED", Kill: "KILL", Put: "PUT", Get: "GET", FileData: "FILE_DATA", FileEnd: "FILE_END",
	Result: "RESULT", PutDir: "PUTDIR", GetDir: "GETDIR", DirEntry: "DIR_ENTRY", DirEnd: "DIR_END", Ping: "PING",
	Pong: "PONG", TCPOpen: "TCP_OPEN", TCPOpened: "TCP_OPENED", TCPData: "TCP_DATA", TCPEOF: "TCP_EOF",
	TCPReset: "TCP_RESET", TCPClosed: "TCP_CLOSED", Error: "ERROR",
}

// TypeByName maps PROTOCOL.md's names (as in test/vectors/v2.json) to types.
func TypeByName(name string) (Type, bool) {
	for t, n := range typeNames {
		if n == name {
			return t, true
		}
	}
	return 0, false
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("0x%02x", uint8(t))
}

// Known reports whether t is a type of PROTOCOL.md §3.
func (t Type) Known() bool { _, ok := typeNames[t]; return ok }

// Frame is one decoded frame. Payload is owned by the frame.
type Frame struct {
	Type    Type
	ID      uint32
	Payload []byte
}

// AppendFrame appends the encoded frame to dst. A payload over MaxPayload is a bug of the caller: it panics.
func AppendFrame(dst []byte, t Type, id uint32, payload []byte) []byte {
	if len(payload) > MaxPayload {
		panic(fmt.Sprintf("wire: payload of %d bytes exceeds %d", len(payload), MaxPayload))
	}
	var h [HeaderSize]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(5+len(payload)))
	h[4] = byte(t)
	binary.LittleEndian.PutUint32(h[5:], id)
	return append(append(dst, h[:]...), payload...)
}

// EncodeFrame returns the encoded frame.
func EncodeFrame(t Type, id uint32, payload []byte) []byte {
	return AppendFrame(make([]byte, 0, HeaderSize+len(payload)), t, id, payload)
}

// Marshal is JSON as JavaScript's JSON.stringify writes it for our bodies: no HTML escaping, no newline.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// EncodeJSON encodes a control frame with a JSON body.
func EncodeJSON(t Type, id uint32, body any) ([]byte, error) {
	p, err := Marshal(body)
	if err != nil {
		return nil, err
	}
	if len(p) > MaxPayload {
		return nil, fmt.Errorf("%v body is %d bytes; a frame holds at most %d", t, len(p), MaxPayload)
	}
	return EncodeFrame(t, id, p), nil
}

// EncodeWindow encodes WINDOW(id, n): n bytes of credit returned.
func EncodeWindow(id, n uint32) []byte {
	var p [4]byte
	binary.LittleEndian.PutUint32(p[:], n)
	return EncodeFrame(Window, id, p[:])
}

// DecodeWindow reads a WINDOW payload.
func DecodeWindow(f Frame) (uint32, error) {
	if len(f.Payload) != 4 {
		return 0, Protof("WINDOW frame: payload must be 4 bytes, got %d", len(f.Payload))
	}
	return binary.LittleEndian.Uint32(f.Payload), nil
}

// Decoder reads frames from a byte stream in any pieces. It holds at most one frame.
type Decoder struct {
	r   io.Reader
	hdr [HeaderSize]byte
	// Partial reports whether the last error came in the middle of a frame.
	Partial bool
}

// NewDecoder reads frames from r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: r} }

// Next returns the next frame. io.EOF at a frame boundary; a *ProtocolError (EPROTO) for a bad length or an
// unknown type, checked before the payload is read, so a peer cannot make the decoder allocate more than
// MaxPayload; io.ErrUnexpectedEOF for a stream cut inside a frame.
func (d *Decoder) Next() (Frame, error) {
	d.Partial = false
	if n, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
		d.Partial = n > 0
		return Frame{}, err
	}
	d.Partial = true
	f, size, err := ParseHeader(d.hdr[:])
	if err != nil {
		return Frame{}, err
	}
	f.Payload = make([]byte, size)
	if _, err := io.ReadFull(d.r, f.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	d.Partial = false
	return f, nil
}

// ParseHeader checks a 9-byte header and returns the frame (without payload) and the payload size.
func ParseHeader(h []byte) (Frame, int, error) {
	length := binary.LittleEndian.Uint32(h[0:])
	if length < 5 || length > 5+MaxPayload {
		return Frame{}, 0, Protof("frame length %d is outside 5..%d", length, 5+MaxPayload)
	}
	t := Type(h[4])
	if !t.Known() {
		return Frame{}, 0, Protof("unknown frame type %v", t)
	}
	return Frame{Type: t, ID: binary.LittleEndian.Uint32(h[5:])}, int(length - 5), nil
}

// DecodeFrame decodes exactly one frame from b (tests, vectors).
func DecodeFrame(b []byte) (Frame, error) {
	d := NewDecoder(bytes.NewReader(b))
	f, err := d.Next()
	if err != nil {
		return f, err
	}
	if _, err := d.Next(); err != io.EOF {
		return Frame{}, Protof("trailing bytes after the frame")
	}
	return f, nil
}

// Object unmarshals a JSON object payload into v, or returns an EPROTO error naming the frame type.
// The payload must be UTF-8, as the TypeScript peers require.
func Object(f Frame, v any) error {
	p := bytes.TrimSpace(f.Payload)
	if !utf8.Valid(p) || len(p) == 0 || p[0] != '{' {
		return Protof("%v frame: payload is not a UTF-8 JSON object", f.Type)
	}
	if err := json.Unmarshal(p, v); err != nil {
		return Protof("%v frame: %v", f.Type, err)
	}
	return nil
}
