package vge

import (
	"errors"
	"io/fs"
	"syscall"
)

// Error is a failure of a connection, of the protocol, or a call refused before anything was sent. Code is
// short and stable: ECLOSED (the connection dropped or was closed), EPROTO (the agent sent a malformed
// frame), EFLOW (the agent overran the credit it was given, §7), EHELLO (no usable WELCOME), EAUTH (token
// refused), EVERSION, ETIMEDOUT, EINVAL (a bad argument), ENOTSUP, EBUSY, or the code of the agent's ERROR
// frame (EREMOTE when that code is not a plain name). Once a connection fails every pending request of it
// returns the same *Error.
type Error struct {
	Code string
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Code
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinels below by code: errors.Is(err, vge.ErrFlow).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Code == e.Code
}

// Sentinels for errors.Is; compare Code after errors.As for anything else.
var (
	ErrClosed   = &Error{Code: "ECLOSED"}
	ErrProto    = &Error{Code: "EPROTO"}
	ErrFlow     = &Error{Code: "EFLOW"}
	ErrHello    = &Error{Code: "EHELLO"}
	ErrAuth     = &Error{Code: "EAUTH"}
	ErrVersion  = &Error{Code: "EVERSION"}
	ErrTimedOut = &Error{Code: "ETIMEDOUT"}
	ErrInvalid  = &Error{Code: "EINVAL"}
	ErrNotSup   = &Error{Code: "ENOTSUP"}
	ErrBusy     = &Error{Code: "EBUSY"}
	// ErrStdinClosed is a write to the stdin of an execution that has ended (EPIPE).
	ErrStdinClosed = &Error{Code: "EPIPE"}
)

func errorf(code, msg string, err error) *Error { return &Error{Code: code, Msg: msg, Err: err} }

// RemoteError is a request the agent refused or failed on its side: a file it could not write (ENOENT,
// EACCES, EFBIG), a job that is not there (ENOENT, ESRCH), a TCP target that refused (ECONNREFUSED), an
// entry of a directory copy the host refused (ELOOP). The connection goes on.
type RemoteError struct {
	Op      string // "put", "get", "putdir", "getdir", "attach", "kill", "tcp"
	Path    string // the guest path or target, when there is one
	Errno   string // the agent's errno name
	Message string // printable, bounded
}

func (e *RemoteError) Error() string {
	s := e.Op
	if e.Path != "" {
		s += " " + e.Path
	}
	return s + ": " + e.Errno + ": " + e.Message
}

var errnos = map[string]syscall.Errno{
	"ENOENT": syscall.ENOENT, "EEXIST": syscall.EEXIST, "EACCES": syscall.EACCES, "EPERM": syscall.EPERM,
	"EISDIR": syscall.EISDIR, "ENOTDIR": syscall.ENOTDIR, "ELOOP": syscall.ELOOP, "EFBIG": syscall.EFBIG,
	"EAGAIN": syscall.EAGAIN, "ESRCH": syscall.ESRCH, "ECONNREFUSED": syscall.ECONNREFUSED,
	"ETIMEDOUT": syscall.ETIMEDOUT, "EHOSTUNREACH": syscall.EHOSTUNREACH, "ECONNRESET": syscall.ECONNRESET,
	"EBUSY": syscall.EBUSY, "ERANGE": syscall.ERANGE, "ENOSPC": syscall.ENOSPC, "EINVAL": syscall.EINVAL,
	"ENOTEMPTY": syscall.ENOTEMPTY, "EROFS": syscall.EROFS,
}

// Is lets errors.Is compare with syscall errnos, fs.ErrNotExist / ErrExist / ErrPermission, and this
// package's sentinels of the same code (ErrBusy for a job taken over).
func (e *RemoteError) Is(target error) bool {
	if t, ok := target.(*Error); ok {
		return t.Msg == "" && t.Code == e.Errno
	}
	if t, ok := target.(syscall.Errno); ok {
		return errnos[e.Errno] == t
	}
	if n, ok := errnos[e.Errno]; ok && target != nil {
		switch target {
		case fs.ErrNotExist, fs.ErrExist, fs.ErrPermission:
			return errors.Is(n, target)
		}
	}
	return false
}

// ExitError is what Run, Output and CombinedOutput return when the execution did not exit 0.
type ExitError struct {
	Result ExitResult
	// Stderr holds the error output of Output when Cmd.Stderr was not set (as os/exec does).
	Stderr []byte
}

func (e *ExitError) Error() string { return e.Result.String() }

// ExitCode is the status a shell would show (ExitResult.ExitCode).
func (e *ExitError) ExitCode() int { return e.Result.ExitCode() }
