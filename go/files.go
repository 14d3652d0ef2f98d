package vge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/vsock-guest-exec/vge-go/wire"
)

// PutOptions for PutFile: Mode (default 0644, with setuid/setgid/sticky allowed), and owner.
type PutOptions struct {
	Mode *uint32
	UID  *uint32
	GID  *uint32
}

// FileInfo is what the agent reports for a GET.
type FileInfo struct {
	Size  int64
	Mode  uint32    // permission bits, when the agent sent them
	Mtime time.Time // zero when the agent did not send it
}

// fileReq is one PUT or GET (and directory copy) id.
type fileReq struct {
	g      *Guest
	id     uint32
	out    *sendWindow     // PUT: our credit
	in     *inbox          // GET: data received
	win    *recvWindow     // GET
	max    int64           // GET: most bytes accepted
	got    int64           // GET: bytes received
	dir    bool            // a directory copy: DIR_ENTRY / DIR_END are part of the stream
	result chan wire.Frame // the RESULT frame
	failed chan error
}

func newFileReq(g *Guest) *fileReq {
	r := &fileReq{g: g, out: newSendWindow(g.inputWindow()), result: make(chan wire.Frame, 1), failed: make(chan error, 1)}
	r.win = &recvWindow{g: g, max: wire.DefaultWindow}
	r.in = newInbox(r.win)
	return r
}

func (r *fileReq) register() error {
	id, err := r.g.register(r)
	r.id, r.win.id = id, id
	return err
}

func (r *fileReq) frame(f wire.Frame) error {
	switch f.Type {
	case wire.Window:
		n, err := wire.DecodeWindow(f)
		if err != nil {
			return err
		}
		return r.out.give(n)
	case wire.FileData, wire.DirEntry, wire.DirEnd:
		if f.Type != wire.FileData && !r.dir {
			return wire.Protof("%v frame for a file request", f.Type)
		}
		if err := r.win.receive(len(f.Payload)); err != nil {
			return err
		}
		if f.Type == wire.FileData {
			r.got += int64(len(f.Payload))
			if !r.dir && r.got > r.max {
				return wire.Protof("GET: the agent sent %d bytes, over maxSize %d", r.got, r.max)
			}
		}
		r.in.push(f)
	case wire.Result:
		r.g.release(r.id)
		r.out.close(errorf("ECLOSED", "the request has ended", nil))
		r.in.end(nil)
		r.result <- f
	default:
		return wire.Protof("%v frame for a file request", f.Type)
	}
	return nil
}

func (r *fileReq) fail(err error) {
	r.out.close(err)
	r.in.end(err)
	r.failed <- err
}

func (r *fileReq) wait(ctx context.Context) (wire.Frame, error) {
	select {
	case f := <-r.result:
		return f, nil
	case err := <-r.failed:
		return wire.Frame{}, err
	case <-ctx.Done():
		r.in.drop()
		return wire.Frame{}, ctx.Err()
	}
}

// PutFile writes size bytes from src to path in the guest, atomically (a temporary file renamed over
// path: a reader sees the old file or the whole new one).
func (g *Guest) PutFile(ctx context.Context, path string, src io.Reader, size int64, opts *PutOptions) error {
	if err := wire.CheckPath(path); err != nil {
		return errorf("EINVAL", err.Error(), nil)
	}
	if size < 0 || size > wire.MaxSafeInt {
		return errorf("EINVAL", fmt.Sprintf("PutFile: size %d out of range", size), nil)
	}
	body := wire.PutBody{Path: path, Size: size}
	if opts != nil {
		body.Mode, body.UID, body.GID = opts.Mode, opts.UID, opts.GID
		if body.Mode != nil && *body.Mode > wire.MaxMode {
			return errorf("EINVAL", "PutFile: mode must be 0..0o7777", nil)
		}
		for _, id := range []*uint32{body.UID, body.GID} {
			if id != nil && *id > wire.MaxID {
				return errorf("EINVAL", "PutFile: uid and gid must be 0..4294967294", nil)
			}
		}
	}
	r := newFileReq(g)
	if err := r.register(); err != nil {
		return err
	}
	if err := g.sendJSON(wire.Put, r.id, body); err != nil {
		return err
	}
	srcErr := r.sendData(ctx, src, size)
	if srcErr != nil && (errors.Is(srcErr, ctx.Err()) || errors.As(srcErr, new(*Error))) && g.Err() != nil {
		return srcErr
	}
	if err := g.send(wire.FileEnd, r.id, nil); err != nil {
		return err
	}
	f, err := r.wait(ctx)
	if err != nil {
		return err
	}
	res, err := wire.ValidateFileResult(f)
	if err != nil {
		return g.fail(g.wrap(err))
	}
	if srcErr != nil {
		return srcErr
	}
	if !res.OK {
		return &RemoteError{Op: "put", Path: path, Errno: res.Errno, Message: res.Message}
	}
	return nil
}

// sendData sends exactly size bytes of src as FILE_DATA within the credit; a source that ends early (or
// fails) is reported after the FILE_END that lets the agent drop the temporary file.
func (r *fileReq) sendData(ctx context.Context, src io.Reader, size int64) error {
	buf := make([]byte, wire.Chunk)
	for sent := int64(0); sent < size; {
		n, err := r.out.take(ctx, int(min(size-sent, wire.Chunk)), false)
		if err != nil {
			return err
		}
		m, rerr := io.ReadFull(src, buf[:n])
		if m > 0 {
			if err := r.g.send(wire.FileData, r.id, buf[:m]); err != nil {
				return err
			}
			sent += int64(m)
		}
		if m < n {
			r.out.give(uint32(n - m))
		}
		if rerr != nil {
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				return errorf("EINVAL", fmt.Sprintf("PutFile: the source ended after %d of %d bytes", sent, size), nil)
			}
			return rerr
		}
	}
	return nil
}

// GetOptions for GetFile: MaxSize (default 1 GiB) bounds what the agent may send.
type GetOptions struct {
	MaxSize int64
}

// GetFile copies the guest file at path into dst. The agent's RESULT size must equal the bytes it sent.
func (g *Guest) GetFile(ctx context.Context, path string, dst io.Writer, opts *GetOptions) (FileInfo, error) {
	if err := wire.CheckPath(path); err != nil {
		return FileInfo{}, errorf("EINVAL", err.Error(), nil)
	}
	body := wire.GetBody{Path: path}
	max := int64(1 << 30)
	if opts != nil && opts.MaxSize > 0 {
		max = min(opts.MaxSize, wire.MaxSafeInt)
		body.MaxSize = max
	}
	r := newFileReq(g)
	r.max = max
	if err := r.register(); err != nil {
		return FileInfo{}, err
	}
	if err := g.sendJSON(wire.Get, r.id, body); err != nil {
		return FileInfo{}, err
	}
	stop := context.AfterFunc(ctx, func() { r.in.dl.set(time.Unix(1, 0)) })
	n, copyErr := io.Copy(dst, ctxReader{r.in, ctx})
	stop()
	if copyErr != nil {
		r.in.drop()
	}
	f, err := r.wait(ctx)
	if err != nil {
		return FileInfo{}, err
	}
	res, err := wire.ValidateFileResult(f)
	if err != nil {
		return FileInfo{}, g.fail(g.wrap(err))
	}
	if !res.OK {
		return FileInfo{}, &RemoteError{Op: "get", Path: path, Errno: res.Errno, Message: res.Message}
	}
	if copyErr != nil {
		return FileInfo{}, copyErr
	}
	if res.Size != r.got || n != r.got {
		return FileInfo{}, g.fail(errorf("EPROTO", fmt.Sprintf("%s: GET %s: RESULT says %d bytes, %d were sent", g.name, path, res.Size, r.got), nil))
	}
	info := FileInfo{Size: res.Size}
	if res.Mode != nil {
		info.Mode = *res.Mode
	}
	if res.Mtime != nil {
		sec, frac := math.Modf(*res.Mtime)
		info.Mtime = time.Unix(int64(sec), int64(frac*1e9))
	}
	return info, nil
}

// ctxReader stops a read loop when ctx ends.
type ctxReader struct {
	in  *inbox
	ctx context.Context
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.in.Read(b)
	if err == errDeadline && c.ctx.Err() != nil {
		err = c.ctx.Err()
	}
	return n, err
}
