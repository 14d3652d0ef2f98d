package vge_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	vge "github.com/vsock-guest-exec/vge-go"
)

// The original tool's provisioning flow, with v2: the agent in the guest's initrd dials host port 1024
// (Firecracker, Cloud Hypervisor and vhost-device-vsock deliver it on the Unix socket UDS_PATH_1024), the
// host sends one command — and, unlike the original format, gets its exit status and output back.
func Example_provisioning() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := vge.Listen(ctx, "fc-listen:/run/vm/v.sock:1024", &vge.Options{TokenFile: "/etc/vge.token"})
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	g, err := l.Accept(ctx) // the guest booted and dialed in
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close() // the agent exits 0 and the boot goes on
	fmt.Println("guest", g.Info().Hostname, g.Info().Kernel, "initrd:", g.Info().Initrd)

	cmd := g.ShellCommand(ctx, "/usr/lib/provision.sh --disk /dev/vda")
	cmd.Timeout = 5 * time.Minute // then the whole process tree is killed
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *vge.ExitError
		if errors.As(err, &ee) {
			log.Fatalf("provisioning failed: %v (status %d)", ee, ee.ExitCode())
		}
		log.Fatal(err) // the connection failed: *vge.Error with a Code
	}
}

// Run a command and read its output and exit status, as with os/exec.
func ExampleGuest_Command() {
	ctx := context.Background()
	g, err := vge.Dial(ctx, "unix:/run/agent.sock", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	out, err := g.Command(ctx, "sh", "-c", "echo out; exit 3").Output()
	var ee *vge.ExitError
	if errors.As(err, &ee) {
		fmt.Printf("%q exit %d\n", out, ee.Result.Code) // "out\n" exit 3
	}
}

// Stream a tar archive into the guest with back-pressure all the way: stdin is written only within the
// agent's credit, and Close half-closes it.
func ExampleCmd_StdinPipe() {
	ctx := context.Background()
	g, _ := vge.Dial(ctx, "fc:/run/fc/v.sock:1024", nil)
	defer g.Close()
	cmd := g.Command(ctx, "tar", "x", "-C", "/srv")
	cmd.Timeout = time.Minute
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	archive, _ := os.Open("site.tar")
	io.Copy(stdin, archive)
	stdin.Close()
	r, err := cmd.Wait()
	fmt.Println(r, err) // exit status 0 <nil>
}

// Files and whole trees, atomically; the tree from the guest is written as if the guest were hostile.
func ExampleGuest_PutFile() {
	ctx := context.Background()
	g, _ := vge.Dial(ctx, "unix:/run/agent.sock", nil)
	defer g.Close()
	mode := uint32(0o644)
	motd := "hello\n"
	if err := g.PutFile(ctx, "/etc/motd", strings.NewReader(motd), int64(len(motd)), &vge.PutOptions{Mode: &mode}); err != nil {
		log.Fatal(err)
	}
	if _, err := g.PutDir(ctx, "./site", "/srv/site"); err != nil {
		log.Fatal(err)
	}
	counts, err := g.GetDir(ctx, "/var/log", "./guest-log", nil)
	fmt.Println(counts.Files, counts.Bytes, err)
	_, err = g.GetFile(ctx, "/nonexistent", io.Discard, nil)
	fmt.Println(errors.Is(err, os.ErrNotExist)) // true
}

// A detached job survives the connection; another host process attaches later and continues where the
// first stopped.
func ExampleGuest_Attach() {
	ctx := context.Background()
	g, _ := vge.Dial(ctx, "fc:/run/fc/v.sock:1024", nil)
	cmd := g.Command(ctx, "/srv/provision.sh")
	cmd.Detach = &vge.Detach{Tag: "provision", Keep: 4 << 20}
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	g.Close() // the job runs on

	g2, _ := vge.Dial(ctx, "fc:/run/fc/v.sock:1024", nil)
	defer g2.Close()
	jobs, _ := g2.List(ctx)
	fmt.Println(len(jobs), jobs[0].Tag, jobs[0].State)
	p, err := g2.Attach(ctx, vge.ByTag("provision"), nil)
	if err != nil {
		log.Fatal(err) // *vge.RemoteError ENOENT: no such job
	}
	go io.Copy(os.Stderr, p.Stderr())
	io.Copy(os.Stdout, p.Stdout()) // what was kept, then live
	r, _ := p.Wait(ctx)
	fmt.Println(r)
}

// A TCP connection made inside the guest (its 127.0.0.1 is its own), as a net.Conn.
func ExampleGuest_DialTCP() {
	ctx := context.Background()
	g, _ := vge.Dial(ctx, "fc:/run/fc/v.sock:1024", nil)
	defer g.Close()
	c, err := g.DialTCP(ctx, "127.0.0.1", 80)
	if err != nil {
		log.Fatal(err) // *vge.RemoteError ECONNREFUSED: errors.Is(err, syscall.ECONNREFUSED)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
	c.CloseWrite() // the server reads EOF and can still answer
	io.Copy(os.Stdout, c)
}
