package wire

import (
	"encoding/json"
	"unicode/utf8"
)

// Replay is where an attach's replay of one stream starts, and the bytes no longer kept before it.
type Replay struct {
	From    int64 `json:"from"`
	Dropped int64 `json:"dropped"`
}

// AttachedBody is ATTACHED.
type AttachedBody struct {
	Job    uint32 `json:"job"`
	Tag    string `json:"tag"`
	PID    uint32 `json:"pid"`
	State  string `json:"state"`
	Stdout Replay `json:"stdout"`
	Stderr Replay `json:"stderr"`
	// Stdin is what is left of the job's one stdin window (PROTOCOL.md §5.1); nil from an agent that
	// predates the field, which gave every follower a whole window.
	Stdin *int64 `json:"stdin,omitempty"`
}

// Counts is a LISTING stream's bytes written and still kept.
type Counts struct {
	Total int64 `json:"total"`
	Kept  int64 `json:"kept"`
}

// JobInfo is one LISTING entry.
type JobInfo struct {
	Job       uint32      `json:"job"`
	Tag       string      `json:"tag"`
	PID       uint32      `json:"pid"`
	Argv      []string    `json:"argv"`
	StartedAt int64       `json:"startedAt"`
	State     string      `json:"state"`
	EndedAt   int64       `json:"endedAt,omitempty"`
	Exit      *ExitResult `json:"exit,omitempty"`
	Attached  bool        `json:"attached"`
	Stdout    Counts      `json:"stdout"`
	Stderr    Counts      `json:"stderr"`
}

// ListingBody is one LISTING frame.
type ListingBody struct {
	Jobs []JobInfo `json:"jobs"`
	More bool      `json:"more"`
}

func tagOf(what string, raw *string) (string, error) {
	if raw == nil {
		return "", nil
	}
	if !TagRE.MatchString(*raw) {
		return "", Protof("%s frame: tag must be a tag (1..64 of A-Z a-z 0-9 . _ -), got %q", what, Printable(*raw, 80))
	}
	return *raw, nil
}

func offset(what, field string, v *int64) (int64, error) {
	if v == nil || *v < 0 || *v > MaxSafeInt {
		return 0, Protof("%s frame: %s must be an integer 0..%d", what, field, int64(MaxSafeInt))
	}
	return *v, nil
}

type rawReplay struct{ From, Dropped *int64 }
type rawCounts struct{ Total, Kept *int64 }

func state(what string, s string) (string, error) {
	if s != "running" && s != "exited" {
		return "", Protof(`%s frame: state must be "running" or "exited"`, what)
	}
	return s, nil
}

// ValidateAttached checks ATTACHED field by field.
func ValidateAttached(f Frame) (AttachedBody, error) {
	var raw struct {
		Job            *uint32
		Tag            *string
		PID            *uint32
		State          string
		Stdout, Stderr *rawReplay
		Stdin          *int64
	}
	if err := Object(f, &raw); err != nil {
		return AttachedBody{}, err
	}
	var a AttachedBody
	var err error
	if raw.Job == nil {
		return a, Protof("ATTACHED frame: job must be a u32")
	}
	a.Job = *raw.Job
	if raw.PID != nil {
		a.PID = *raw.PID
	}
	if a.Tag, err = tagOf("ATTACHED", raw.Tag); err != nil {
		return a, err
	}
	if a.State, err = state("ATTACHED", raw.State); err != nil {
		return a, err
	}
	for _, s := range []struct {
		name string
		raw  *rawReplay
		out  *Replay
	}{{"stdout", raw.Stdout, &a.Stdout}, {"stderr", raw.Stderr, &a.Stderr}} {
		if s.raw == nil {
			return a, Protof("ATTACHED frame: %s must be an object {from, dropped}", s.name)
		}
		if s.out.From, err = offset("ATTACHED", s.name+".from", s.raw.From); err != nil {
			return a, err
		}
		if s.out.Dropped, err = offset("ATTACHED", s.name+".dropped", s.raw.Dropped); err != nil {
			return a, err
		}
	}
	if raw.Stdin != nil {
		if *raw.Stdin < 0 || *raw.Stdin > MaxWindow {
			return a, Protof("ATTACHED frame: stdin must be 0..%d", MaxWindow)
		}
		a.Stdin = raw.Stdin
	}
	return a, nil
}

// DetachedBody is DETACHED: Errno empty means a KILL was delivered.
type DetachedBody struct {
	Errno   string `json:"errno,omitempty"`
	Message string `json:"message,omitempty"`
}

// ValidateDetached checks DETACHED.
func ValidateDetached(f Frame) (DetachedBody, error) {
	var raw struct{ Errno, Message *string }
	if err := Object(f, &raw); err != nil {
		return DetachedBody{}, err
	}
	if raw.Errno == nil {
		return DetachedBody{}, nil
	}
	e, err := Name("DETACHED", "errno", *raw.Errno)
	d := DetachedBody{Errno: e}
	if raw.Message != nil {
		d.Message = Printable(*raw.Message, MaxMessage)
	}
	return d, err
}

// ValidateListing checks one LISTING frame, entry by entry.
func ValidateListing(f Frame) (ListingBody, error) {
	var raw struct {
		Jobs []json.RawMessage
		More *bool
	}
	if err := Object(f, &raw); err != nil {
		return ListingBody{}, err
	}
	if raw.Jobs == nil || raw.More == nil {
		return ListingBody{}, Protof("LISTING frame: jobs must be an array and more a boolean")
	}
	out := ListingBody{More: *raw.More, Jobs: make([]JobInfo, 0, len(raw.Jobs))}
	for _, j := range raw.Jobs {
		info, err := jobInfo(j)
		if err != nil {
			return ListingBody{}, err
		}
		out.Jobs = append(out.Jobs, info)
	}
	return out, nil
}

func jobInfo(b json.RawMessage) (JobInfo, error) {
	const w = "LISTING"
	var raw struct {
		Job                *uint32
		Tag                *string
		PID                *uint32
		Argv               []string
		StartedAt, EndedAt *int64
		State              string
		Exit               *ExitResult
		Attached           *bool
		Stdout, Stderr     *rawCounts
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return JobInfo{}, Protof("%s frame: %v", w, err)
	}
	var j JobInfo
	var err error
	if raw.Job == nil {
		return j, Protof("%s frame: job must be a u32", w)
	}
	j.Job = *raw.Job
	if raw.PID != nil {
		j.PID = *raw.PID
	}
	if j.Tag, err = tagOf(w, raw.Tag); err != nil {
		return j, err
	}
	n := 0
	for _, a := range raw.Argv {
		n += utf8.RuneCountInString(a)
	}
	if raw.Argv == nil || len(raw.Argv) > MaxListArgv || n > MaxListArgv+16 {
		return j, Protof("%s frame: argv must be strings of at most %d characters in all", w, MaxListArgv)
	}
	j.Argv = raw.Argv
	if j.StartedAt, err = offset(w, "startedAt", raw.StartedAt); err != nil {
		return j, err
	}
	if raw.EndedAt != nil {
		if j.EndedAt, err = offset(w, "endedAt", raw.EndedAt); err != nil {
			return j, err
		}
	}
	if j.State, err = state(w, raw.State); err != nil {
		return j, err
	}
	if raw.Attached == nil {
		return j, Protof("%s frame: attached must be a boolean", w)
	}
	j.Attached = *raw.Attached
	j.Exit = raw.Exit
	for _, s := range []struct {
		name string
		raw  *rawCounts
		out  *Counts
	}{{"stdout", raw.Stdout, &j.Stdout}, {"stderr", raw.Stderr, &j.Stderr}} {
		if s.raw == nil {
			return j, Protof("%s frame: %s must be an object {total, kept}", w, s.name)
		}
		if s.out.Total, err = offset(w, s.name+".total", s.raw.Total); err != nil {
			return j, err
		}
		if s.out.Kept, err = offset(w, s.name+".kept", s.raw.Kept); err != nil {
			return j, err
		}
	}
	return j, nil
}
