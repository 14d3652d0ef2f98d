package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"testing"
)

// FuzzDecoder feeds arbitrary bytes to the frame decoder and every check the host applies to a frame: none
// may panic, no payload may exceed MaxPayload, and a stream either yields frames or a clear error. The
// seed corpus (every vector, valid and invalid, and testdata/fuzz/FuzzDecoder) runs in every `go test`;
// `go test -fuzz FuzzDecoder -fuzztime 30s ./wire` explores further.
func FuzzDecoder(f *testing.F) {
	v := loadVectors(f)
	var all []byte
	for _, vec := range v.Vectors {
		b, _ := hex.DecodeString(vec.Hex)
		f.Add(b)
		all = append(all, b...)
	}
	f.Add(all)
	for _, inv := range v.Invalid {
		b, _ := hex.DecodeString(inv.Hex)
		f.Add(b)
	}
	for _, inv := range v.InvalidEntries {
		b, _ := hex.DecodeString(inv.Hex)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(&trickle{b: data})
		for i := 0; ; i++ {
			fr, err := d.Next()
			if err != nil {
				var pe *ProtocolError
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &pe) {
					t.Fatalf("unexpected error %T %v", err, err)
				}
				return
			}
			if len(fr.Payload) > MaxPayload || !fr.Type.Known() {
				t.Fatalf("frame %v with %d bytes", fr.Type, len(fr.Payload))
			}
			if !bytes.Equal(EncodeFrame(fr.Type, fr.ID, fr.Payload)[HeaderSize:], fr.Payload) {
				t.Fatal("re-encoding differs")
			}
			validateAgentFrame(fr)
			ValidateWelcome(fr)
			ValidateDirResult(fr)
			DecodeWindow(fr)
			if e, err := DecodeEntry(fr); err == nil && CheckRelPath(e.Path) != nil {
				t.Fatalf("entry %q passed", e.Path)
			}
		}
	})
}

// trickle hands out bytes in pieces of varying size, as a socket does.
type trickle struct {
	b []byte
	n int
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	r.n++
	k := min(len(p), len(r.b), 1+r.n%13)
	copy(p, r.b[:k])
	r.b = r.b[k:]
	return k, nil
}
