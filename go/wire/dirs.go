package wire

import (
	"encoding/json"
	"math"
	"strings"
)

// Bounds of a directory entry's path (PATH_MAX) and of each component (NAME_MAX).
const (
	MaxEntryPath = 4096
	MaxName      = 255
)

// Entry is a DIR_ENTRY header (§12).
type Entry struct {
	Type   string  `json:"type"` // "file", "dir" or "symlink"
	Path   string  `json:"path"`
	Mode   uint32  `json:"mode"`
	Mtime  float64 `json:"mtime"` // milliseconds since the epoch
	Size   *int64  `json:"size,omitempty"`
	Target string  `json:"target,omitempty"`
}

// CheckRelPath is a path relative to a copy's root: components joined by single '/', none empty, "." or
// "..", no NUL; so it cannot name anything outside the root by itself.
func CheckRelPath(p string) error {
	if p == "" || len(p) > MaxEntryPath || strings.IndexByte(p, 0) >= 0 || p[0] == '/' {
		return Protof("DIR_ENTRY: path %s is empty, absolute, too long or contains NUL", quoted(p))
	}
	for _, c := range strings.Split(p, "/") {
		if c == "" || c == "." || c == ".." || len(c) > MaxName {
			return Protof("DIR_ENTRY: path %s has an empty, \".\", \"..\" or over-long component", quoted(p))
		}
	}
	return nil
}

func quoted(p string) string { return Printable(`"`+p+`"`, 128) }

// DecodeEntry checks a DIR_ENTRY header field by field; the mode keeps the permission bits only.
func DecodeEntry(f Frame) (Entry, error) {
	var raw struct {
		Type   string
		Path   *string
		Mode   *uint32
		Mtime  *float64
		Size   json.RawMessage
		Target *string
	}
	if err := Object(f, &raw); err != nil {
		return Entry{}, err
	}
	if raw.Path == nil {
		return Entry{}, Protof("DIR_ENTRY: path must be a string")
	}
	if err := CheckRelPath(*raw.Path); err != nil {
		return Entry{}, err
	}
	if raw.Mode == nil {
		return Entry{}, Protof("DIR_ENTRY: mode must be a u32")
	}
	if raw.Mtime == nil || math.IsNaN(*raw.Mtime) || math.IsInf(*raw.Mtime, 0) {
		return Entry{}, Protof("DIR_ENTRY: mtime must be a finite number")
	}
	e := Entry{Type: raw.Type, Path: *raw.Path, Mode: *raw.Mode & 0o7777, Mtime: *raw.Mtime}
	switch raw.Type {
	case "file":
		var size int64
		if raw.Size == nil || json.Unmarshal(raw.Size, &size) != nil || size < 0 || size > MaxSafeInt {
			return Entry{}, Protof("DIR_ENTRY: size must be a non-negative integer")
		}
		e.Size = &size
	case "dir":
	case "symlink":
		if raw.Target == nil || *raw.Target == "" || len(*raw.Target) > MaxEntryPath || strings.IndexByte(*raw.Target, 0) >= 0 {
			return Entry{}, Protof("DIR_ENTRY: target must be a non-empty string of at most %d bytes without NUL", MaxEntryPath)
		}
		e.Target = *raw.Target
	default:
		return Entry{}, Protof(`DIR_ENTRY: type must be "file", "dir" or "symlink"`)
	}
	return e, nil
}
