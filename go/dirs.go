package vge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vsock-guest-exec/vge-go/wire"
)

// DirCounts is what a directory copy moved: regular files, directories, symlinks, file bytes, and entries
// left out (FIFOs, sockets, devices).
type DirCounts struct {
	Files, Dirs, Symlinks, Bytes, Skipped int64
}

func (g *Guest) needDirs(remote string) error {
	if !g.info.Has("dirs") {
		return errorf("ENOTSUP", g.name+": the agent does not copy directories (no \"dirs\" capability; older than 0.2.0?)", nil)
	}
	if err := wire.CheckPath(remote); err != nil {
		return errorf("EINVAL", err.Error(), nil)
	}
	return nil
}

// PutDir copies the tree at localDir into remoteDir in the guest (made if missing, merged into if present)
// as one stream (§12): regular files, directories, symlinks as links, permission bits and mtimes; other
// file types are skipped and counted. Each file lands atomically.
func (g *Guest) PutDir(ctx context.Context, localDir, remoteDir string) (DirCounts, error) {
	if err := g.needDirs(remoteDir); err != nil {
		return DirCounts{}, err
	}
	if fi, err := os.Stat(localDir); err != nil || !fi.IsDir() {
		if err == nil {
			err = &fs.PathError{Op: "putdir", Path: localDir, Err: errors.New("not a directory")}
		}
		return DirCounts{}, err
	}
	r := newFileReq(g)
	r.dir = true
	if err := r.register(); err != nil {
		return DirCounts{}, err
	}
	if err := g.sendJSON(wire.PutDir, r.id, wire.PathBody{Path: remoteDir}); err != nil {
		return DirCounts{}, err
	}
	var sent DirCounts
	walkErr := filepath.WalkDir(localDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == localDir {
			return nil
		}
		rel, err := filepath.Rel(localDir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := wire.Entry{Path: filepath.ToSlash(rel), Mode: unixMode(info.Mode()), Mtime: float64(info.ModTime().UnixNano()) / 1e6}
		if err := wire.CheckRelPath(e.Path); err != nil {
			return fmt.Errorf("%s: cannot be sent: %v", p, err)
		}
		switch {
		case info.Mode().IsDir():
			e.Type = "dir"
			sent.Dirs++
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.Type, e.Target = "symlink", t
			sent.Symlinks++
		case info.Mode().IsRegular():
			size := info.Size()
			e.Type, e.Size = "file", &size
		default:
			sent.Skipped++
			return nil
		}
		if err := r.sendEntry(ctx, e); err != nil {
			return err
		}
		if e.Type == "file" {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := r.sendData(ctx, f, *e.Size); err != nil {
				return err
			}
			sent.Files++
			sent.Bytes += *e.Size
		}
		return nil
	})
	if walkErr != nil && g.Err() != nil {
		return sent, g.Err()
	}
	// A failure here sends DIR_END at once: the agent sees a file cut short and removes its temporary file.
	if err := g.send(wire.DirEnd, r.id, nil); err != nil {
		return sent, err
	}
	f, err := r.wait(ctx)
	if err != nil {
		return sent, err
	}
	res, err := wire.ValidateDirResult(f)
	if err != nil {
		return sent, g.fail(g.wrap(err))
	}
	if walkErr != nil {
		return sent, walkErr
	}
	if !res.OK {
		return sent, &RemoteError{Op: "putdir", Path: joinGuest(remoteDir, res.Path), Errno: res.Errno, Message: res.Message}
	}
	return DirCounts{Files: res.Files, Dirs: res.Dirs, Symlinks: res.Symlinks, Bytes: res.Bytes, Skipped: sent.Skipped}, nil
}

func joinGuest(root, rel string) string {
	if rel == "" {
		return root
	}
	return strings.TrimSuffix(root, "/") + "/" + rel
}

// sendEntry sends a DIR_ENTRY: its payload counts against the window whole.
func (r *fileReq) sendEntry(ctx context.Context, e wire.Entry) error {
	p, err := wire.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := r.out.take(ctx, len(p), true); err != nil {
		return err
	}
	return r.g.send(wire.DirEntry, r.id, p)
}

// unixMode is a FileMode's permission, setuid, setgid and sticky bits as Unix writes them.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// GetDirOptions for GetDir: PreserveMode keeps the guest's permission bits instead of putting them under
// the host's umask (setuid, setgid and sticky are dropped either way).
type GetDirOptions struct {
	PreserveMode bool
}

// GetDir copies the guest's tree at remoteDir into localDir (made if missing: its parent must exist;
// merged into if present). The guest is hostile: nothing is written outside localDir (every directory on
// the way is opened relative to its parent with O_NOFOLLOW, a symlink there is refused with ELOOP), each
// file is written to a temporary name opened O_CREAT|O_EXCL|O_NOFOLLOW and renamed into place, setuid,
// setgid and sticky bits are dropped, and memory stays at one window whatever the sizes.
func (g *Guest) GetDir(ctx context.Context, remoteDir, localDir string, opts *GetDirOptions) (DirCounts, error) {
	if err := g.needDirs(remoteDir); err != nil {
		return DirCounts{}, err
	}
	x, err := newExtractor(localDir, opts != nil && opts.PreserveMode)
	if err != nil {
		return DirCounts{}, err
	}
	defer x.close()
	r := newFileReq(g)
	r.dir = true
	if err := r.register(); err != nil {
		return DirCounts{}, err
	}
	if err := g.sendJSON(wire.GetDir, r.id, wire.PathBody{Path: remoteDir}); err != nil {
		return DirCounts{}, err
	}
	var local error // the first entry this host refused; the rest of the stream is then dropped
	ended := false
	for {
		f, err := r.in.next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				r.in.drop()
			}
			x.abort()
			return x.counts, err
		}
		if local == nil {
			switch f.Type {
			case wire.DirEntry:
				e, err := wire.DecodeEntry(f)
				if err != nil {
					x.abort()
					return x.counts, g.fail(g.wrap(err))
				}
				local = x.entry(e)
			case wire.FileData:
				local = x.data(f.Payload)
			case wire.DirEnd:
				local = x.end()
				ended = local == nil
			}
			if local != nil {
				x.abort()
				r.in.drop()
			}
		}
		r.win.consumed(len(f.Payload))
	}
	f, err := r.wait(ctx)
	if err != nil {
		return x.counts, err
	}
	res, err := wire.ValidateDirResult(f)
	if err != nil {
		return x.counts, g.fail(g.wrap(err))
	}
	if local != nil {
		return x.counts, local
	}
	if !res.OK {
		x.abort()
		return x.counts, &RemoteError{Op: "getdir", Path: joinGuest(remoteDir, res.Path), Errno: res.Errno, Message: res.Message}
	}
	c := x.counts
	if !ended || res.Files != c.Files || res.Dirs != c.Dirs || res.Symlinks != c.Symlinks || res.Bytes != c.Bytes {
		return c, g.fail(errorf("EPROTO", fmt.Sprintf("%s: GETDIR %s: RESULT counts %d files, %d dirs, %d symlinks, %d bytes; the stream held %d, %d, %d, %d (complete: %v)",
			g.name, remoteDir, res.Files, res.Dirs, res.Symlinks, res.Bytes, c.Files, c.Dirs, c.Symlinks, c.Bytes, ended), nil))
	}
	c.Skipped = res.Skipped
	return c, nil
}
