package wire

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Limits of PROTOCOL.md §3 and §9.
const (
	MaxID        = 0xfffffffe // uid/gid: (uid_t)-1 means "no change" and is refused
	MaxMode      = 0o7777
	MaxTimeoutMs = 0xffffffff
	MaxSafeInt   = 1<<53 - 1
	MaxKeep      = 64 << 20
	MaxWindow    = 64 << 20
	MaxFact      = 256
	MaxMessage   = 1024
	MaxListArgv  = 256
	// MaxListEntries bounds the entries a host accepts over one LIST.
	MaxListEntries = 4096
)

// TagRE is a detached execution's tag.
var TagRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

var tokenRE = regexp.MustCompile(`^[A-Z][A-Z0-9_+-]{0,31}$`)
var capRE = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// HelloBody is HELLO.
type HelloBody struct {
	Versions []int      `json:"versions"`
	Client   string     `json:"client,omitempty"`
	Auth     *NonceAuth `json:"auth,omitempty"`
}

// NonceAuth is HELLO's auth: the host's nonce, hex.
type NonceAuth struct {
	Nonce string `json:"nonce"`
}

// AuthBody is AUTH: the host's proof, hex.
type AuthBody struct {
	Proof string `json:"proof"`
}

// WelcomeBody is the agent's WELCOME, as the host keeps it after ValidateWelcome.
type WelcomeBody struct {
	Version      int      `json:"version"`
	Agent        string   `json:"agent"`
	Capabilities []string `json:"capabilities"`
	Hostname     string   `json:"hostname"`
	Kernel       string   `json:"kernel"`
	Arch         string   `json:"arch"`
	Initrd       bool     `json:"initrd"`
	PID          uint32   `json:"pid"`
	MaxPayload   uint32   `json:"maxPayload"`
	Window       uint32   `json:"window"`
}

// Has reports whether the agent announced a capability ("dirs", "detach", "tcp", ...).
func (w *WelcomeBody) Has(capability string) bool {
	for _, c := range w.Capabilities {
		if c == capability {
			return true
		}
	}
	return false
}

// PTY asks for a pseudo-terminal.
type PTY struct {
	Cols uint32 `json:"cols"`
	Rows uint32 `json:"rows"`
	Term string `json:"term,omitempty"`
}

// DetachBody makes an execution a job (§5.1).
type DetachBody struct {
	Tag  string  `json:"tag,omitempty"`
	Keep *uint32 `json:"keep,omitempty"`
}

// ExecBody is EXEC (§5). Field order follows the TypeScript encoder, so that bytes match the vectors.
type ExecBody struct {
	Argv       []string           `json:"argv,omitempty"`
	Shell      *string            `json:"shell,omitempty"`
	Env        map[string]*string `json:"env,omitempty"`
	ClearEnv   bool               `json:"clearEnv,omitempty"`
	Cwd        string             `json:"cwd,omitempty"`
	User       string             `json:"user,omitempty"`
	UID        *uint32            `json:"uid,omitempty"`
	GID        *uint32            `json:"gid,omitempty"`
	Stdin      string             `json:"stdin,omitempty"`
	PTY        *PTY               `json:"pty,omitempty"`
	Merge      bool               `json:"merge,omitempty"`
	TimeoutMs  uint32             `json:"timeoutMs,omitempty"`
	KillSignal string             `json:"killSignal,omitempty"`
	Detach     *DetachBody        `json:"detach,omitempty"`
	Limits     *Limits            `json:"limits,omitempty"`
	Usage      bool               `json:"usage,omitempty"`
}

// Limits caps one execution (§5.2; the agent needs --cgroup): memory in bytes, processes and threads at
// once, CPUs (0.5 = half a CPU). Zero leaves that one unset.
type Limits struct {
	MemoryBytes int64   `json:"memoryBytes,omitempty"`
	Pids        int64   `json:"pids,omitempty"`
	CPU         float64 `json:"cpu,omitempty"`
}

// Check applies the rules the agent applies (§3, §5), so a mistake is caught before it costs the connection.
func (b *ExecBody) Check() error {
	if l := b.Limits; l != nil {
		switch {
		case l.MemoryBytes != 0 && (l.MemoryBytes < 1<<20 || l.MemoryBytes > 1<<53-1):
			return fmt.Errorf("EXEC: limits.memoryBytes must be 1048576..2^53-1")
		case l.Pids != 0 && (l.Pids < 1 || l.Pids > 4194304):
			return fmt.Errorf("EXEC: limits.pids must be 1..4194304")
		case l.CPU != 0 && (l.CPU < 0.01 || l.CPU > 4096):
			return fmt.Errorf("EXEC: limits.cpu must be 0.01..4096")
		}
	}
	if (len(b.Argv) > 0) == (b.Shell != nil) {
		return fmt.Errorf("EXEC: exactly one of argv and shell is required")
	}
	for i, a := range b.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("EXEC: argv[%d] contains NUL", i)
		}
	}
	if b.Shell != nil && strings.IndexByte(*b.Shell, 0) >= 0 {
		return fmt.Errorf("EXEC: shell contains NUL")
	}
	for k, v := range b.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("EXEC: env name %q is invalid", k)
		}
		if v != nil && strings.IndexByte(*v, 0) >= 0 {
			return fmt.Errorf("EXEC: env %s contains NUL", k)
		}
	}
	if strings.IndexByte(b.Cwd, 0) >= 0 || strings.IndexByte(b.User, 0) >= 0 {
		return fmt.Errorf("EXEC: cwd and user cannot contain NUL")
	}
	if isDigits(b.User) {
		if n, err := strconv.ParseUint(b.User, 10, 64); err != nil || n > MaxID {
			return fmt.Errorf("EXEC: user given as a number must be a uid 0..%d", MaxID)
		}
	}
	for _, id := range []*uint32{b.UID, b.GID} {
		if id != nil && *id > MaxID {
			return fmt.Errorf("EXEC: uid and gid must be 0..%d", MaxID)
		}
	}
	if b.Stdin != "" && b.Stdin != "pipe" && b.Stdin != "closed" {
		return fmt.Errorf(`EXEC: stdin must be "pipe" or "closed"`)
	}
	if b.PTY != nil {
		if err := CheckSize(b.PTY.Cols, b.PTY.Rows); err != nil {
			return err
		}
		if strings.IndexByte(b.PTY.Term, 0) >= 0 {
			return fmt.Errorf("EXEC: pty.term contains NUL")
		}
	}
	if b.KillSignal != "" {
		if _, _, ok := LookupSignal(b.KillSignal); !ok {
			return fmt.Errorf("EXEC: unknown signal %q", b.KillSignal)
		}
	}
	if b.Detach != nil {
		if b.Detach.Tag != "" && !TagRE.MatchString(b.Detach.Tag) {
			return fmt.Errorf("EXEC: detach tag %q must be 1..64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)", b.Detach.Tag)
		}
		if b.Detach.Keep != nil && *b.Detach.Keep > MaxKeep {
			return fmt.Errorf("EXEC: detach keep must be 0..%d", MaxKeep)
		}
	}
	return nil
}

// CheckSize checks terminal dimensions: what struct winsize holds, and 0 is no size.
func CheckSize(cols, rows uint32) error {
	if cols < 1 || cols > 65535 || rows < 1 || rows > 65535 {
		return fmt.Errorf("terminal size %dx%d: cols and rows must be 1..65535", cols, rows)
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// SignalBody is SIGNAL.
type SignalBody struct {
	Signal string `json:"signal"`
}

// ResizeBody is RESIZE.
type ResizeBody struct {
	Cols uint32 `json:"cols"`
	Rows uint32 `json:"rows"`
}

// PutBody is PUT (§8).
type PutBody struct {
	Path string  `json:"path"`
	Size int64   `json:"size"`
	Mode *uint32 `json:"mode,omitempty"`
	UID  *uint32 `json:"uid,omitempty"`
	GID  *uint32 `json:"gid,omitempty"`
}

// GetBody is GET (§8).
type GetBody struct {
	Path    string `json:"path"`
	MaxSize int64  `json:"maxSize,omitempty"`
}

// PathBody is PUTDIR and GETDIR.
type PathBody struct {
	Path string `json:"path"`
}

// JobRef names a job by tag or number (ATTACH, KILL).
type JobRef struct {
	Tag string `json:"tag,omitempty"`
	Job uint32 `json:"job,omitempty"`
}

// Offsets is where a replay starts per stream.
type Offsets struct {
	Stdout int64 `json:"stdout"`
	Stderr int64 `json:"stderr"`
}

// AttachBody is ATTACH.
type AttachBody struct {
	Tag  string   `json:"tag,omitempty"`
	Job  uint32   `json:"job,omitempty"`
	From *Offsets `json:"from,omitempty"`
}

// KillBody is KILL.
type KillBody struct {
	Tag    string `json:"tag,omitempty"`
	Job    uint32 `json:"job,omitempty"`
	Signal string `json:"signal"`
}

// TCPOpenBody is TCP_OPEN.
type TCPOpenBody struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// CheckPath is an absolute guest path without NUL.
func CheckPath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("guest path %q must be absolute, without NUL", p)
	}
	return nil
}

// ValidateWelcome checks a WELCOME field by field (§9 "What the host accepts").
func ValidateWelcome(f Frame) (*WelcomeBody, error) {
	var raw struct {
		Version      json.RawMessage `json:"version"`
		Agent        *string         `json:"agent"`
		Capabilities []string        `json:"capabilities"`
		Hostname     *string         `json:"hostname"`
		Kernel       *string         `json:"kernel"`
		Arch         *string         `json:"arch"`
		Initrd       *bool           `json:"initrd"`
		PID          *uint32         `json:"pid"`
		MaxPayload   *uint32         `json:"maxPayload"`
		Window       *uint32         `json:"window"`
	}
	if err := Object(f, &raw); err != nil {
		return nil, err
	}
	if string(raw.Version) != "2" {
		return nil, Protof("WELCOME frame: the agent chose version %s; this host speaks 2", Printable(string(raw.Version), 32))
	}
	if raw.Capabilities == nil || len(raw.Capabilities) > 64 {
		return nil, Protof("WELCOME frame: capabilities must be at most 64 short lowercase names")
	}
	for _, c := range raw.Capabilities {
		if !capRE.MatchString(c) {
			return nil, Protof("WELCOME frame: capabilities must be at most 64 short lowercase names")
		}
	}
	str := func(name string, v *string, max int) (string, error) {
		if v == nil {
			return "", Protof("WELCOME frame: %s must be a string", name)
		}
		if n := len([]rune(*v)); n > max {
			return "", Protof("WELCOME frame: %s is %d characters long; at most %d are accepted", name, n, max)
		}
		return *v, nil
	}
	w := &WelcomeBody{Version: 2, Capabilities: raw.Capabilities}
	var err error
	if w.Agent, err = str("agent", raw.Agent, 64); err != nil {
		return nil, err
	}
	if w.Hostname, err = str("hostname", raw.Hostname, MaxFact); err != nil {
		return nil, err
	}
	if w.Kernel, err = str("kernel", raw.Kernel, MaxFact); err != nil {
		return nil, err
	}
	if w.Arch, err = str("arch", raw.Arch, 32); err != nil {
		return nil, err
	}
	switch {
	case raw.Initrd == nil:
		return nil, Protof("WELCOME frame: initrd must be a boolean")
	case raw.PID == nil:
		return nil, Protof("WELCOME frame: pid must be a u32")
	case raw.MaxPayload == nil || *raw.MaxPayload == 0:
		return nil, Protof("WELCOME frame: maxPayload must be a positive u32")
	case raw.Window == nil || *raw.Window == 0 || *raw.Window > MaxWindow:
		return nil, Protof("WELCOME frame: window must be 1..%d bytes", MaxWindow)
	}
	w.Initrd, w.PID, w.MaxPayload, w.Window = *raw.Initrd, *raw.PID, *raw.MaxPayload, *raw.Window
	return w, nil
}

// Name checks an errno, signal or ERROR code: a plain name like ENOENT or SIGKILL.
func Name(what, field, v string) (string, error) {
	if !tokenRE.MatchString(v) {
		return "", Protof("%s frame: %s must be a name like ENOENT or SIGKILL, got %s", what, field, Printable(strconv.Quote(v), 64))
	}
	return v, nil
}

// StartedBody is STARTED.
type StartedBody struct {
	PID uint32 `json:"pid"`
	Job uint32 `json:"job,omitempty"`
	Tag string `json:"tag,omitempty"`
}

// ValidateStarted checks STARTED: pid a u32, job (if any) a positive u32, tag a tag.
func ValidateStarted(f Frame) (StartedBody, error) {
	var raw struct {
		PID *uint32         `json:"pid"`
		Job json.RawMessage `json:"job"`
		Tag *string         `json:"tag"`
	}
	if err := Object(f, &raw); err != nil {
		return StartedBody{}, err
	}
	if raw.PID == nil {
		return StartedBody{}, Protof("STARTED frame: pid must be a u32")
	}
	s := StartedBody{PID: *raw.PID}
	if raw.Job != nil && string(raw.Job) != "null" {
		if err := json.Unmarshal(raw.Job, &s.Job); err != nil || s.Job == 0 {
			return StartedBody{}, Protof("STARTED frame: job must be a positive u32")
		}
	}
	if raw.Tag != nil {
		if !TagRE.MatchString(*raw.Tag) {
			return StartedBody{}, Protof("STARTED frame: tag is not a tag")
		}
		s.Tag = *raw.Tag
	}
	return s, nil
}

// ErrorBody is ERROR, with the code checked (not a plain name: EREMOTE) and the message made printable.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ValidateError reads an ERROR frame as the host keeps it.
func ValidateError(f Frame) ErrorBody {
	var raw struct {
		Code    *string `json:"code"`
		Message *string `json:"message"`
	}
	e := ErrorBody{Code: "EREMOTE", Message: "(no message)"}
	if Object(f, &raw) != nil {
		return e
	}
	if raw.Code != nil && tokenRE.MatchString(*raw.Code) {
		e.Code = *raw.Code
	}
	if raw.Message != nil {
		e.Message = Printable(*raw.Message, MaxMessage)
	}
	return e
}

// FileResult is a RESULT of PUT or GET.
type FileResult struct {
	OK      bool     `json:"ok"`
	Size    int64    `json:"size"`
	Mode    *uint32  `json:"mode,omitempty"`
	Mtime   *float64 `json:"mtime,omitempty"`
	Errno   string   `json:"errno,omitempty"`
	Message string   `json:"message,omitempty"`
}

// ValidateFileResult checks a RESULT of PUT or GET.
func ValidateFileResult(f Frame) (FileResult, error) {
	var raw struct {
		OK      *bool           `json:"ok"`
		Size    *int64          `json:"size"`
		Mode    *uint32         `json:"mode"`
		Mtime   *float64        `json:"mtime"`
		Errno   *string         `json:"errno"`
		Message *string         `json:"message"`
		Path    json.RawMessage `json:"path"`
	}
	if err := Object(f, &raw); err != nil {
		return FileResult{}, err
	}
	if raw.OK == nil {
		return FileResult{}, Protof("RESULT frame: ok must be a boolean")
	}
	if !*raw.OK {
		return failure("RESULT", raw.Errno, raw.Message)
	}
	if raw.Size == nil || *raw.Size < 0 || *raw.Size > MaxSafeInt {
		return FileResult{}, Protof("RESULT frame: size must be a byte count")
	}
	if raw.Mode != nil && *raw.Mode > MaxMode {
		return FileResult{}, Protof("RESULT frame: mode must be permission bits 0..0o7777")
	}
	if raw.Mtime != nil && *raw.Mtime < 0 {
		return FileResult{}, Protof("RESULT frame: mtime must be seconds since the epoch")
	}
	return FileResult{OK: true, Size: *raw.Size, Mode: raw.Mode, Mtime: raw.Mtime}, nil
}

func failure(what string, errno, msg *string) (FileResult, error) {
	if errno == nil {
		return FileResult{}, Protof("%s frame: errno must be a name", what)
	}
	e, err := Name(what, "errno", *errno)
	if err != nil {
		return FileResult{}, err
	}
	if msg == nil {
		return FileResult{}, Protof("%s frame: message must be a string", what)
	}
	return FileResult{Errno: e, Message: Printable(*msg, MaxMessage)}, nil
}

// DirResult is the RESULT that ends a directory copy (§12).
type DirResult struct {
	OK       bool   `json:"ok"`
	Files    int64  `json:"files"`
	Dirs     int64  `json:"dirs"`
	Symlinks int64  `json:"symlinks"`
	Bytes    int64  `json:"bytes"`
	Skipped  int64  `json:"skipped"`
	Errno    string `json:"errno,omitempty"`
	Message  string `json:"message,omitempty"`
	Path     string `json:"path,omitempty"`
}

// ValidateDirResult checks the RESULT of PUTDIR or GETDIR.
func ValidateDirResult(f Frame) (DirResult, error) {
	var raw struct {
		OK                                    *bool
		Files, Dirs, Symlinks, Bytes, Skipped *int64
		Errno, Message, Path                  *string
	}
	if err := Object(f, &raw); err != nil {
		return DirResult{}, err
	}
	if raw.OK == nil {
		return DirResult{}, Protof("RESULT frame: ok must be a boolean")
	}
	if !*raw.OK {
		r, err := failure("RESULT", raw.Errno, raw.Message)
		if err != nil {
			return DirResult{}, err
		}
		d := DirResult{Errno: r.Errno, Message: r.Message}
		if raw.Path != nil {
			d.Path = Printable(*raw.Path, MaxMessage)
		}
		return d, nil
	}
	var zero int64
	if raw.Skipped == nil {
		raw.Skipped = &zero
	}
	for _, c := range []*int64{raw.Files, raw.Dirs, raw.Symlinks, raw.Bytes, raw.Skipped} {
		if c == nil || *c < 0 || *c > MaxSafeInt {
			return DirResult{}, Protof("RESULT frame: files, dirs, symlinks, bytes and skipped must be non-negative integers")
		}
	}
	return DirResult{OK: true, Files: *raw.Files, Dirs: *raw.Dirs, Symlinks: *raw.Symlinks, Bytes: *raw.Bytes, Skipped: *raw.Skipped}, nil
}

// Printable escapes control characters (C0, DEL, C1, line separators, bidi controls) of guest text and cuts
// it to max characters, so nothing a guest sends can drive the terminal that shows an error.
func Printable(s string, max int) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n >= max {
			b.WriteString("…")
			break
		}
		n++
		switch {
		case r == 0x1b:
			b.WriteString(`\e`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0, r == 0x2028, r == 0x2029, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
