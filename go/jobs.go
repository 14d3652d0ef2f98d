package vge

import (
	"context"
	"fmt"

	"github.com/vsock-guest-exec/vge-go/wire"
)

// JobRef names a detached execution: by Tag, or by the agent's job number.
type JobRef struct {
	Tag string
	Job uint32
}

// ByTag names a job by its tag; ByJob by its number.
func ByTag(tag string) JobRef { return JobRef{Tag: tag} }
func ByJob(n uint32) JobRef   { return JobRef{Job: n} }

func (r JobRef) check() error {
	if (r.Tag == "") == (r.Job == 0) {
		return errorf("EINVAL", "JobRef: give a tag or a job number", nil)
	}
	if r.Tag != "" && !wire.TagRE.MatchString(r.Tag) {
		return errorf("EINVAL", fmt.Sprintf("JobRef: %q is not a tag (1..64 of A-Z a-z 0-9 . _ -)", r.Tag), nil)
	}
	return nil
}

func (r JobRef) String() string {
	if r.Tag != "" {
		return r.Tag
	}
	return fmt.Sprintf("%%%d", r.Job)
}

// Attach follows a detached execution from any connection: the output kept from the offsets in from (nil:
// all that is kept), then live output, then its EXIT. The newest Attach takes a job over: the previous
// follower's Wait returns a *RemoteError EBUSY. An unknown job is ENOENT, offsets past the end ERANGE.
func (g *Guest) Attach(ctx context.Context, ref JobRef, from *Offsets) (*Process, error) {
	if err := ref.check(); err != nil {
		return nil, err
	}
	p := newProcess(g)
	p.tag = ref.String()
	if err := p.register(); err != nil {
		return nil, err
	}
	if err := g.sendJSON(wire.Attach, p.id, wire.AttachBody{Tag: ref.Tag, Job: ref.Job, From: from}); err != nil {
		return nil, err
	}
	if err := p.waitStarted(ctx); err != nil {
		if ctx.Err() != nil {
			// ATTACH has no cancel: let it run out with its output dropped and credited.
			p.stdout.drop()
			p.stderr.drop()
		}
		return nil, err
	}
	return p, nil
}

// List returns the agent's detached executions, running and recently finished.
func (g *Guest) List(ctx context.Context) ([]JobInfo, error) {
	r := &listReq{ch: make(chan error, 1)}
	id, err := g.register(r)
	if err != nil {
		return nil, err
	}
	defer g.release(id)
	if err := g.sendJSON(wire.List, id, struct{}{}); err != nil {
		return nil, err
	}
	select {
	case err := <-r.ch:
		return r.jobs, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type listReq struct {
	jobs []JobInfo
	ch   chan error
	done bool
}

func (r *listReq) frame(f wire.Frame) error {
	if f.Type != wire.Listing || r.done {
		return wire.Protof("%v frame for a LIST", f.Type)
	}
	l, err := wire.ValidateListing(f)
	if err != nil {
		return err
	}
	if len(r.jobs)+len(l.Jobs) > wire.MaxListEntries {
		return wire.Protof("LISTING: more than %d entries", wire.MaxListEntries)
	}
	r.jobs = append(r.jobs, l.Jobs...)
	if !l.More {
		r.done = true
		r.ch <- nil
	}
	return nil
}

func (r *listReq) fail(err error) {
	if !r.done {
		r.done = true
		r.ch <- err
	}
}

// KillJob signals a detached execution's process group without attaching: a *RemoteError ENOENT for no
// such job, ESRCH when it has ended.
func (g *Guest) KillJob(ctx context.Context, ref JobRef, sig string) error {
	if err := ref.check(); err != nil {
		return err
	}
	name, _, ok := wire.LookupSignal(sig)
	if !ok {
		return errorf("EINVAL", fmt.Sprintf("unknown signal %q", sig), nil)
	}
	r := &killReq{ch: make(chan error, 1)}
	id, err := g.register(r)
	if err != nil {
		return err
	}
	defer g.release(id)
	if err := g.sendJSON(wire.Kill, id, wire.KillBody{Tag: ref.Tag, Job: ref.Job, Signal: name}); err != nil {
		return err
	}
	select {
	case err := <-r.ch:
		if re, ok := err.(*RemoteError); ok {
			re.Path = ref.String()
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type killReq struct{ ch chan error }

func (r *killReq) frame(f wire.Frame) error {
	if f.Type != wire.Detached {
		return wire.Protof("%v frame for a KILL", f.Type)
	}
	d, err := wire.ValidateDetached(f)
	if err != nil {
		return err
	}
	var res error
	if d.Errno != "" {
		res = &RemoteError{Op: "kill", Errno: d.Errno, Message: d.Message}
	}
	select {
	case r.ch <- res:
	default:
	}
	return nil
}

func (r *killReq) fail(err error) {
	select {
	case r.ch <- err:
	default:
	}
}
