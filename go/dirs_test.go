//go:build linux

package vge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/vsock-guest-exec/vge-go/wire"
)

func TestAgentDirsRoundTrip(t *testing.T) {
	g := dialAgent(t)
	ctx := tctx(t)
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "a/b/c"), 0o755)
	os.WriteFile(filepath.Join(src, "a/b/c/deep.txt"), []byte("deep"), 0o640)
	os.WriteFile(filepath.Join(src, "empty"), nil, 0o600)
	big := make([]byte, 700<<10+5)
	for i := range big {
		big[i] = byte(i * 7)
	}
	os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644)
	os.WriteFile(filepath.Join(src, "suid"), []byte("x"), 0o755)
	os.Chmod(filepath.Join(src, "suid"), 0o4755)
	os.Symlink("a/b", filepath.Join(src, "link"))
	syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644)
	for i := 0; i < 200; i++ {
		os.WriteFile(filepath.Join(src, "a", fmt.Sprintf("f%03d", i)), []byte(fmt.Sprint(i)), 0o644)
	}
	guestDir := filepath.Join(t.TempDir(), "in-guest")
	sent, err := g.PutDir(ctx, src, guestDir)
	if err != nil {
		t.Fatal(err)
	}
	if sent.Files != 204 || sent.Dirs != 3 || sent.Symlinks != 1 || sent.Skipped != 1 || sent.Bytes != int64(len(big))+4+1+sumDigits(200) {
		t.Fatalf("%+v", sent)
	}
	back := filepath.Join(t.TempDir(), "back")
	got, err := g.GetDir(ctx, guestDir, back, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Files != sent.Files || got.Dirs != sent.Dirs || got.Symlinks != 1 || got.Bytes != sent.Bytes {
		t.Fatalf("%+v vs %+v", got, sent)
	}
	if b, _ := os.ReadFile(filepath.Join(back, "big.bin")); string(b) != string(big) {
		t.Fatal("big.bin differs")
	}
	if l, _ := os.Readlink(filepath.Join(back, "link")); l != "a/b" {
		t.Fatalf("link %q", l)
	}
	st, _ := os.Stat(filepath.Join(back, "suid"))
	if st.Mode()&os.ModeSetuid != 0 || st.Mode().Perm() != 0o755&^os.FileMode(processUmask()) {
		t.Fatalf("suid kept or umask ignored: %v", st.Mode())
	}
	st, _ = os.Stat(filepath.Join(back, "a/b/c/deep.txt"))
	sst, _ := os.Stat(filepath.Join(src, "a/b/c/deep.txt"))
	if !st.ModTime().Equal(sst.ModTime().Truncate(1000)) && st.ModTime().Sub(sst.ModTime()).Abs() > 2e6 {
		t.Fatalf("mtime %v vs %v", st.ModTime(), sst.ModTime())
	}
	if _, err := g.GetDir(ctx, "/no/such/dir", filepath.Join(t.TempDir(), "x"), nil); !errors.Is(err, fs_ErrNotExist) {
		t.Fatalf("%v", err)
	}
}

var fs_ErrNotExist = os.ErrNotExist

func sumDigits(n int) int64 {
	var s int64
	for i := 0; i < n; i++ {
		s += int64(len(fmt.Sprint(i)))
	}
	return s
}

func entry(typ, path string, size int64, target string) map[string]any {
	e := map[string]any{"type": typ, "path": path, "mode": 0o6777, "mtime": 1.7e12}
	if typ == "file" {
		e["size"] = size
	}
	if target != "" {
		e["target"] = target
	}
	return e
}

// A hostile GETDIR: symlinks the stream makes, symlinks already in the target, lies about sizes and counts,
// a flood past the window. Nothing may appear outside the target.
func TestHostileGetDir(t *testing.T) {
	outside := t.TempDir()
	type step func(f *fake, id uint32)
	ok := func(f *fake, id uint32, files, dirs, links, bytes int) {
		f.json(wire.Result, id, map[string]any{"ok": true, "files": files, "dirs": dirs, "symlinks": links, "bytes": bytes, "skipped": 0})
	}
	cases := []struct {
		name  string
		pre   func(dst string)
		steps step
		check func(t *testing.T, err error)
	}{
		{"through a symlink the stream made", nil, func(f *fake, id uint32) {
			f.json(wire.DirEntry, id, entry("symlink", "esc", 0, outside))
			f.json(wire.DirEntry, id, entry("file", "esc/pwned", 3, ""))
			f.frame(wire.FileData, id, []byte("bad"))
			f.frame(wire.DirEnd, id, nil)
			ok(f, id, 1, 0, 1, 3)
		}, func(t *testing.T, err error) {
			if !errors.Is(err, syscall.ELOOP) {
				t.Fatalf("%v", err)
			}
		}},
		{"through a symlink already there", func(dst string) { os.MkdirAll(dst, 0o755); os.Symlink(outside, filepath.Join(dst, "pre")) }, func(f *fake, id uint32) {
			f.json(wire.DirEntry, id, entry("dir", "pre", 0, ""))
			f.json(wire.DirEntry, id, entry("file", "pre/x/pwned", 0, ""))
			f.frame(wire.DirEnd, id, nil)
			ok(f, id, 1, 1, 0, 0)
		}, func(t *testing.T, err error) {
			if !errors.Is(err, syscall.ELOOP) {
				t.Fatalf("%v", err)
			}
		}},
		{"dot-dot path", nil, func(f *fake, id uint32) {
			f.json(wire.DirEntry, id, entry("file", "../pwned", 0, ""))
		}, func(t *testing.T, err error) { wantCode(t, err, "EPROTO") }},
		{"absolute path", nil, func(f *fake, id uint32) {
			f.json(wire.DirEntry, id, entry("file", outside+"/pwned", 0, ""))
		}, func(t *testing.T, err error) { wantCode(t, err, "EPROTO") }},
		{"more bytes than size", nil, func(f *fake, id uint32) {
			f.json(wire.DirEntry, id, entry("file", "f", 2, ""))
			f.frame(wire.FileData, id, []byte("four"))
			f.frame(wire.DirEnd, id, nil)
			ok(f, id, 1, 0, 0, 4)
		}, func(t *testing.T, err error) {
			if !errors.Is(err, syscall.EPROTO) {
				t.Fatalf("%v", err)
			}
		}},
		{"counts that lie", nil, func(f *fake, id uint32) {
			f.json(wire.DirEntry, id, entry("file", "f", 2, ""))
			f.frame(wire.FileData, id, []byte("ok"))
			f.frame(wire.DirEnd, id, nil)
			ok(f, id, 5, 0, 0, 2)
		}, func(t *testing.T, err error) { wantCode(t, err, "EPROTO") }},
		{"flood past the window", nil, func(f *fake, id uint32) {
			f.json(wire.DirEntry, id, entry("file", "huge", 1<<40, ""))
			chunk := make([]byte, wire.Chunk)
			for i := 0; i < 4096; i++ {
				if f.frame(wire.FileData, id, chunk) != nil {
					return
				}
			}
		}, func(t *testing.T, err error) { wantCode(t, err, "EFLOW") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "dst")
			if c.pre != nil {
				c.pre(dst)
			}
			g, err := withFake(t, nil, func(f *fake) {
				req := f.expect(wire.GetDir)
				c.steps(f, req.ID)
				f.expect(wire.Ping)
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = g.GetDir(tctx(t), "/srv", dst, nil)
			c.check(t, err)
			if names, _ := os.ReadDir(outside); len(names) != 0 {
				t.Fatalf("written outside: %v", names)
			}
			filepath.Walk(dst, func(p string, info os.FileInfo, err error) error {
				if err == nil && info.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky) != 0 {
					t.Errorf("%s kept %v", p, info.Mode())
				}
				if err == nil && filepath.Base(p) != "dst" && len(filepath.Base(p)) > 5 && filepath.Base(p)[0] == '.' {
					t.Errorf("temporary file left: %s", p)
				}
				return nil
			})
		})
	}
}

// A guest repeating one directory entry, or naming ever new ones, within its window: the host keeps one
// record per distinct directory (at most maxDirs), so its heap does not follow the stream.
func TestHostileGetDirRepeatedEntries(t *testing.T) {
	const n = 100_000
	name := strings.Repeat("d", 250)
	runtime.GC()
	var before, during runtime.MemStats
	runtime.ReadMemStats(&before)
	g, err := withFake(t, nil, func(f *fake) {
		id := f.expect(wire.GetDir).ID
		frame, _ := wire.EncodeJSON(wire.DirEntry, id, map[string]any{"type": "dir", "path": name, "mode": 0o755, "mtime": 1.7e12})
		credit := int64(wire.DefaultWindow)
		for i := 0; i < n; i++ {
			for credit < int64(len(frame)-9) {
				w := f.expect(wire.Window)
				c, err := wire.DecodeWindow(w)
				if err != nil {
					return
				}
				credit += int64(c)
			}
			if f.raw(frame) != nil {
				return
			}
			credit -= int64(len(frame) - 9)
		}
		// Once half the window is back the host has handled nearly every entry: measure it mid-stream,
		// while whatever it keeps per entry is still held (DIR_END lets it go).
		for credit < int64(wire.DefaultWindow)/2 {
			c, err := wire.DecodeWindow(f.expect(wire.Window))
			if err != nil {
				return
			}
			credit += int64(c)
		}
		runtime.GC()
		runtime.ReadMemStats(&during)
		f.frame(wire.DirEnd, id, nil)
		f.json(wire.Result, id, map[string]any{"ok": true, "files": 0, "dirs": n, "symlinks": 0, "bytes": 0, "skipped": 0})
		f.expect(wire.Ping)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.GetDir(tctx(t), "/srv", filepath.Join(t.TempDir(), "dst"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Dirs != n {
		t.Fatalf("dirs %d", got.Dirs)
	}
	// Before: one record per entry, +33 MiB of heap for 100,000 repeats.
	if grew := int64(during.HeapInuse) - int64(before.HeapInuse); grew > 8<<20 {
		t.Fatalf("heap grew by %d bytes", grew)
	}
}
