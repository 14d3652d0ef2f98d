//go:build linux

package vge

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/vsock-guest-exec/vge-go/wire"
)

// O_PATH: an fd for the name itself (with O_NOFOLLOW: the symlink, not its target), to fstat it.
const oPath = 0x200000

// extractor writes a directory stream under one root, every operation relative to a directory fd that
// was opened O_NOFOLLOW from the root, so no symlink (sent, or already in the tree) leads outside it.
type extractor struct {
	rootPath string
	root     int
	umask    uint32
	preserve bool
	// One record per distinct directory (a repeated entry updates it), at most maxDirs: a hostile stream
	// repeating or inventing directory entries cannot grow the host without bound.
	dirs   map[string]dirMeta
	cur    *curFile
	counts DirCounts
}

// maxDirs bounds the distinct directories one stream may name (the Python host's cap too).
const maxDirs = 1 << 16

type dirMeta struct {
	path  string
	mode  uint32
	mtime float64
}

type curFile struct {
	parent    int
	name, tmp string
	fd        int
	left      int64
	e         wire.Entry
}

func newExtractor(dir string, preserve bool) (*extractor, error) {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &extractor{rootPath: dir, root: fd, umask: processUmask(), preserve: preserve}, nil
}

// processUmask reads the umask without setting it (umask(2) would change it for every thread at once).
func processUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("Umask:")); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(string(v)), 8, 32); err == nil {
					return uint32(n)
				}
			}
		}
	}
	return 0o022
}

func (x *extractor) refuse(rel string, errno syscall.Errno, why string) error {
	return &os.PathError{Op: "getdir", Path: filepath.Join(x.rootPath, rel), Err: fmt.Errorf("%s: %w", why, errno)}
}

// kind is what is at name under dirfd, not following a symlink: S_IFDIR, S_IFLNK, ... or 0 when nothing.
func kind(dirfd int, name string) (uint32, error) {
	fd, err := syscall.Openat(dirfd, name, oPath|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err == syscall.ENOENT {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return st.Mode & syscall.S_IFMT, nil
}

// parent opens the directory that holds rel, making missing directories (0755), refusing symlinks.
func (x *extractor) parent(rel string) (int, string, error) {
	parts := strings.Split(rel, "/")
	fd, err := syscall.Openat(x.root, ".", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", err
	}
	for i, c := range parts[:len(parts)-1] {
		next, err := syscall.Openat(fd, c, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		if err == syscall.ENOENT {
			if err = syscall.Mkdirat(fd, c, 0o755); err == nil || err == syscall.EEXIST {
				next, err = syscall.Openat(fd, c, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
			}
		}
		if err != nil {
			k, _ := kind(fd, c)
			syscall.Close(fd)
			at := strings.Join(parts[:i+1], "/")
			if k == syscall.S_IFLNK {
				return -1, "", x.refuse(rel, syscall.ELOOP, "refusing to write through the symlink "+at)
			}
			if errno, ok := err.(syscall.Errno); ok {
				return -1, "", x.refuse(rel, errno, at)
			}
			return -1, "", err
		}
		syscall.Close(fd)
		fd = next
	}
	return fd, parts[len(parts)-1], nil
}

func (x *extractor) mode(m uint32) uint32 {
	m &= 0o777 // never setuid, setgid or sticky from a guest
	if !x.preserve {
		m &^= x.umask
	}
	return m
}

func tmpName(name string) string {
	b := make([]byte, 6)
	rand.Read(b)
	t := "." + name + ".vge-" + hex.EncodeToString(b)
	if len(t) > 255 {
		t = ".vge-" + hex.EncodeToString(b)
	}
	return t
}

func futimens(fd int, mtimeMs float64) error {
	ns := int64(mtimeMs * 1e6)
	if math.IsNaN(mtimeMs) || mtimeMs > 9e15 || mtimeMs < -9e15 {
		ns = 0
	}
	ts := [2]syscall.Timespec{syscall.NsecToTimespec(ns), syscall.NsecToTimespec(ns)}
	_, _, e := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func symlinkat(target string, dirfd int, name string) error {
	t, err := syscall.BytePtrFromString(target)
	if err != nil {
		return err
	}
	n, err := syscall.BytePtrFromString(name)
	if err != nil {
		return err
	}
	_, _, e := syscall.Syscall(syscall.SYS_SYMLINKAT, uintptr(unsafe.Pointer(t)), uintptr(dirfd), uintptr(unsafe.Pointer(n)))
	if e != 0 {
		return e
	}
	return nil
}

func (x *extractor) entry(e wire.Entry) error {
	if x.cur != nil {
		return x.refuse(x.cur.e.Path, syscall.EPROTO, fmt.Sprintf("the next entry came with %d bytes of the file missing", x.cur.left))
	}
	parent, name, err := x.parent(e.Path)
	if err != nil {
		return err
	}
	switch e.Type {
	case "dir":
		defer syscall.Close(parent)
		if err := syscall.Mkdirat(parent, name, 0o700); err != nil {
			k, _ := kind(parent, name)
			switch {
			case err != syscall.EEXIST:
				return x.refuse(e.Path, err.(syscall.Errno), "mkdir")
			case k == syscall.S_IFLNK:
				return x.refuse(e.Path, syscall.ELOOP, "refusing to use the symlink "+e.Path+" as a directory")
			case k != syscall.S_IFDIR:
				return x.refuse(e.Path, syscall.ENOTDIR, "not a directory")
			}
		}
		if _, seen := x.dirs[e.Path]; !seen && len(x.dirs) >= maxDirs {
			return x.refuse(e.Path, syscall.EPROTO, fmt.Sprintf("the stream names more than %d directories", maxDirs))
		}
		if x.dirs == nil {
			x.dirs = map[string]dirMeta{}
		}
		x.dirs[e.Path] = dirMeta{e.Path, e.Mode, e.Mtime}
		x.counts.Dirs++
	case "symlink":
		defer syscall.Close(parent)
		tmp := tmpName(name)
		if err := symlinkat(e.Target, parent, tmp); err != nil {
			return x.refuse(e.Path, err.(syscall.Errno), "symlink")
		}
		if err := syscall.Renameat(parent, tmp, parent, name); err != nil {
			syscall.Unlinkat(parent, tmp)
			return x.refuse(e.Path, err.(syscall.Errno), "rename")
		}
		x.counts.Symlinks++
	case "file":
		tmp := tmpName(name)
		fd, err := syscall.Openat(parent, tmp, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			syscall.Close(parent)
			return x.refuse(e.Path, err.(syscall.Errno), "create")
		}
		x.cur = &curFile{parent: parent, name: name, tmp: tmp, fd: fd, left: *e.Size, e: e}
		if x.cur.left == 0 {
			return x.finishFile()
		}
	}
	return nil
}

func (x *extractor) data(p []byte) error {
	c := x.cur
	if c == nil {
		if len(p) == 0 {
			return nil
		}
		return &os.PathError{Op: "getdir", Path: x.rootPath, Err: fmt.Errorf("file data without a file entry: %w", syscall.EPROTO)}
	}
	if int64(len(p)) > c.left {
		return x.refuse(c.e.Path, syscall.EPROTO, fmt.Sprintf("more bytes than its size %d", *c.e.Size))
	}
	for len(p) > 0 {
		n, err := syscall.Write(c.fd, p)
		if err != nil {
			return x.refuse(c.e.Path, err.(syscall.Errno), "write")
		}
		p = p[n:]
		c.left -= int64(n)
	}
	if c.left == 0 {
		return x.finishFile()
	}
	return nil
}

// finishFile sets mode and mtime by fd, fsyncs, and renames over the name: a file, or a symlink itself,
// is replaced; a directory is not.
func (x *extractor) finishFile() error {
	c := x.cur
	err := syscall.Fchmod(c.fd, x.mode(c.e.Mode))
	if err == nil {
		err = futimens(c.fd, c.e.Mtime)
	}
	if err == nil {
		err = syscall.Fsync(c.fd)
	}
	syscall.Close(c.fd)
	c.fd = -1
	if err == nil {
		err = syscall.Renameat(c.parent, c.tmp, c.parent, c.name)
	}
	if err != nil {
		return x.refuse(c.e.Path, err.(syscall.Errno), "finishing the file")
	}
	syscall.Close(c.parent)
	x.cur = nil
	x.counts.Files++
	x.counts.Bytes += *c.e.Size
	return nil
}

// end applies directory modes and mtimes, deepest first, through fds opened O_DIRECTORY|O_NOFOLLOW.
func (x *extractor) end() error {
	if x.cur != nil {
		return x.refuse(x.cur.e.Path, syscall.EPROTO, fmt.Sprintf("the stream ended with %d bytes of the file missing", x.cur.left))
	}
	order := make([]dirMeta, 0, len(x.dirs))
	for _, d := range x.dirs {
		order = append(order, d)
	}
	sort.Slice(order, func(i, j int) bool { return strings.Count(order[i].path, "/") > strings.Count(order[j].path, "/") })
	for _, d := range order {
		parent, name, err := x.parent(d.path)
		if err != nil {
			return err
		}
		fd, err := syscall.Openat(parent, name, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		syscall.Close(parent)
		if err != nil {
			return x.refuse(d.path, err.(syscall.Errno), "open")
		}
		err = syscall.Fchmod(fd, x.mode(d.mode))
		if err == nil {
			err = futimens(fd, d.mtime)
		}
		syscall.Close(fd)
		if err != nil {
			return x.refuse(d.path, err.(syscall.Errno), "setting mode and mtime")
		}
	}
	x.dirs = nil
	return nil
}

// abort removes the temporary file of a file cut short.
func (x *extractor) abort() {
	if c := x.cur; c != nil {
		if c.fd >= 0 {
			syscall.Close(c.fd)
		}
		syscall.Unlinkat(c.parent, c.tmp)
		syscall.Close(c.parent)
		x.cur = nil
	}
}

func (x *extractor) close() {
	x.abort()
	syscall.Close(x.root)
}
