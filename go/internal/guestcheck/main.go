// Command guestcheck drives a real guest through package vge's public API and prints one JSON report:
// test/guest/hosts.test.ts boots the dracut initrd with its agent listening on vsock port 1024 and runs
// this against fc:UDS:1024 (vhost-device-vsock's CONNECT socket), as a Go host next to Firecracker would.
//
//	guestcheck fc:UDS:1024 [RELEASE_FILE]
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	vge "github.com/vsock-guest-exec/vge-go"
)

// The test root's static busybox, in the initrd too: dracut's image has no wc or sha256sum.
const bb = "/usr/lib/vge-testroot/busybox"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: guestcheck ADDRESS [RELEASE_FILE]")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "guestcheck:", err)
		os.Exit(1)
	}
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func run(addr string, release []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if _, err := vge.ParseAddress(addr); err != nil {
		return err
	}
	var g *vge.Guest
	var err error
	// The VMM refuses CONNECT until the agent in the guest listens: keep trying for a minute.
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		if g, err = vge.Dial(ctx, addr, nil); err == nil || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		return err
	}
	defer g.Close()
	rep := map[string]any{}
	info := g.Info()
	rep["info"] = map[string]any{"initrd": info.Initrd, "kernel": info.Kernel, "version": info.Version}

	var out, errb bytes.Buffer
	c := g.ShellCommand(ctx, "echo out; echo err >&2; exit 3")
	c.Stdout, c.Stderr = &out, &errb
	err = c.Run()
	var ee *vge.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("exit 3: %v", err)
	}
	rep["run"] = []any{ee.ExitCode(), out.String(), errb.String()}

	in := make([]byte, 300_000)
	rand.Read(in)
	wc := g.Command(ctx, bb, "wc", "-c")
	wc.Stdin = bytes.NewReader(in)
	n, err := wc.Output()
	if err != nil {
		return fmt.Errorf("wc: %v", err)
	}
	rep["wc"] = strings.TrimSpace(string(n))

	mode := uint32(0o640)
	blob := make([]byte, 700_000)
	rand.Read(blob)
	if err := g.PutFile(ctx, "/run/vge-go-put", bytes.NewReader(blob), int64(len(blob)), &vge.PutOptions{Mode: &mode}); err != nil {
		return fmt.Errorf("put: %v", err)
	}
	var back bytes.Buffer
	fi, err := g.GetFile(ctx, "/run/vge-go-put", &back, nil)
	if err != nil {
		return fmt.Errorf("get: %v", err)
	}
	rep["file"] = sum(back.Bytes()) == sum(blob) && fi.Mode == 0o640
	s, err := g.Command(ctx, bb, "sha256sum", "/run/vge-go-put").Output()
	if err != nil {
		return fmt.Errorf("sha256sum: %v", err)
	}
	rep["sum"] = strings.Fields(string(s))[0] == sum(blob)

	t := g.ShellCommand(ctx, "sleep 100 & sleep 100")
	t.Timeout = time.Second
	err = t.Run()
	if !errors.As(err, &ee) {
		return fmt.Errorf("timeout: %v", err)
	}
	rep["timeout"] = []any{ee.Result.Status, ee.ExitCode()}

	_, err = g.GetFile(ctx, "/run/no-such-file", &back, nil)
	rep["missing"] = errors.Is(err, fs.ErrNotExist)

	rtt, err := g.Ping(ctx)
	rep["ping"] = err == nil && rtt < 5*time.Second

	if len(release) > 0 {
		if err := g.ShellCommand(ctx, ": > "+release[0]).Run(); err != nil {
			return fmt.Errorf("release: %v", err)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(rep)
}
