package wire

import (
	"encoding/json"
	"fmt"
)

// ExitResult is how an execution ended (§6).
type ExitResult struct {
	// Status is "exited", "signaled", "timeout" or "error" (the program never started).
	Status string
	// Code is the exit code for "exited" (and a "timeout" whose process exited by itself, with HasCode).
	Code    int
	HasCode bool
	// Signal and Signo: the signal for "signaled" and "timeout" (canonical name, Linux number).
	Signal string
	Signo  int
	// Errno and Message: why the program could not start ("error").
	Errno   string
	Message string
	// Usage is what the execution used, when the EXEC asked for it (usage or limits, §5.2).
	Usage *Usage
	// OOM reports that the kernel's OOM killer killed a process of the execution (agent with --cgroup).
	OOM bool
}

// Usage is an EXIT's usage (§5.2): CPU time, peak memory, and where the agent read them.
type Usage struct {
	UserUsec   int64  `json:"userUsec"`
	SystemUsec int64  `json:"systemUsec"`
	MemoryPeak *int64 `json:"memoryPeak,omitempty"`
	From       string `json:"from"`
}

// Success reports exit code 0.
func (r ExitResult) Success() bool { return r.Status == "exited" && r.Code == 0 }

// ExitCode maps the result to one status as a shell would (§6): the code, 128+signo, 124 after a timeout,
// 127 for a program not found, 126 for other start failures.
func (r ExitResult) ExitCode() int {
	switch r.Status {
	case "exited":
		return r.Code
	case "signaled":
		return 128 + r.Signo
	case "timeout":
		return 124
	}
	if r.Errno == "ENOENT" {
		return 127
	}
	return 126
}

func (r ExitResult) String() string {
	switch r.Status {
	case "exited":
		return fmt.Sprintf("exit status %d", r.Code)
	case "signaled":
		return "signal: " + r.Signal
	case "timeout":
		return "timed out: " + r.Signal
	}
	return fmt.Sprintf("did not start: %s: %s", r.Errno, r.Message)
}

// MarshalJSON writes the wire form (for fake agents in tests).
func (r ExitResult) MarshalJSON() ([]byte, error) {
	switch r.Status {
	case "exited":
		return Marshal(struct {
			Status string `json:"status"`
			Code   int    `json:"code"`
		}{r.Status, r.Code})
	case "error":
		return Marshal(struct {
			Status  string `json:"status"`
			Errno   string `json:"errno"`
			Message string `json:"message"`
		}{r.Status, r.Errno, r.Message})
	}
	return Marshal(struct {
		Status string `json:"status"`
		Signal string `json:"signal"`
		Signo  int    `json:"signo"`
	}{r.Status, r.Signal, r.Signo})
}

// UnmarshalJSON reads and checks an EXIT body: known status, codes in range, names as names, the message
// made printable.
func (r *ExitResult) UnmarshalJSON(b []byte) error {
	var raw struct {
		Status  string          `json:"status"`
		Code    json.RawMessage `json:"code"`
		Signal  *string         `json:"signal"`
		Signo   *uint8          `json:"signo"`
		Errno   *string         `json:"errno"`
		Message *string         `json:"message"`
		Usage   *Usage          `json:"usage"`
		OOM     *bool           `json:"oom"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Protof("EXIT frame: %v", err)
	}
	if u := raw.Usage; u != nil {
		const maxSafe = 1<<53 - 1
		if u.UserUsec < 0 || u.UserUsec > maxSafe || u.SystemUsec < 0 || u.SystemUsec > maxSafe ||
			(u.MemoryPeak != nil && (*u.MemoryPeak < 0 || *u.MemoryPeak > maxSafe)) || (u.From != "cgroup" && u.From != "rusage") {
			return Protof("EXIT frame: usage must be non-negative integers and from \"cgroup\" or \"rusage\"")
		}
	}
	code := func(required bool) (int, bool, error) {
		if raw.Code == nil || string(raw.Code) == "null" {
			if required {
				return 0, false, Protof("EXIT frame: code must be 0..255")
			}
			return 0, false, nil
		}
		var c uint8
		if err := json.Unmarshal(raw.Code, &c); err != nil {
			return 0, false, Protof("EXIT frame: code must be 0..255")
		}
		return int(c), true, nil
	}
	sig := func() error {
		if raw.Signal == nil || raw.Signo == nil || *raw.Signo > 127 {
			return Protof("EXIT frame: signal must be a name and signo 0..127")
		}
		s, err := Name("EXIT", "signal", *raw.Signal)
		r.Signal, r.Signo = s, int(*raw.Signo)
		return err
	}
	*r = ExitResult{Status: raw.Status, Usage: raw.Usage, OOM: raw.OOM != nil && *raw.OOM}
	var err error
	switch raw.Status {
	case "exited":
		r.Code, r.HasCode, err = code(true)
	case "signaled":
		err = sig()
	case "timeout":
		if err = sig(); err == nil {
			r.Code, r.HasCode, err = code(false)
		}
	case "error":
		if raw.Errno == nil || raw.Message == nil {
			return Protof("EXIT frame: errno and message must be strings")
		}
		if r.Errno, err = Name("EXIT", "errno", *raw.Errno); err == nil {
			r.Message = Printable(*raw.Message, MaxMessage)
		}
	default:
		err = Protof("EXIT frame: unknown status %s", Printable(raw.Status, 64))
	}
	return err
}

// ValidateExit reads an EXIT frame.
func ValidateExit(f Frame) (ExitResult, error) {
	var r ExitResult
	err := Object(f, &r)
	var pe *ProtocolError
	if err != nil && !asProto(err, &pe) {
		err = Protof("EXIT frame: %v", err)
	}
	return r, err
}

func asProto(err error, pe **ProtocolError) bool {
	p, ok := err.(*ProtocolError)
	if ok {
		*pe = p
	}
	return ok
}
