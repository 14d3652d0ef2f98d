// Command conformance runs the scenarios of test/conformance/scenarios.json through package vge's public
// API against the agents named in $VGE_CONF (test/conformance/conformance.test.ts starts them) and prints
// one JSON line {"id", "result"} per scenario. The TypeScript and Python drivers do the same.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	vge "github.com/vsock-guest-exec/vge-go"
)

type scenario map[string]any

type config struct {
	Scenarios   string            `json:"scenarios"`
	Work        string            `json:"work"`
	Addresses   map[string]string `json:"addresses"`
	Tokens      map[string]string `json:"tokens"`
	Tag         string            `json:"tag"`
	EchoPort    int               `json:"echo_port"`
	RefusedPort int               `json:"refused_port"`
}

type result map[string]any

var conf config

func (s scenario) str(k string) string { v, _ := s[k].(string); return v }
func (s scenario) num(k string) int    { v, _ := s[k].(float64); return int(v) }

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func digest(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// errorResult keeps the code every error of vge carries: the agent's errno, or the connection's code.
func errorResult(err error) result {
	var re *vge.RemoteError
	if errors.As(err, &re) {
		return result{"error": re.Errno}
	}
	var e *vge.Error
	if errors.As(err, &e) {
		return result{"error": e.Code}
	}
	return result{"exception": err.Error()}
}

// open dials a named address, or for a listen address waits for the agent to dial in.
func open(ctx context.Context, name, token string) (*vge.Guest, error) {
	addr := conf.Addresses[name]
	var opts *vge.Options
	if token != "" {
		opts = &vge.Options{Token: []byte(conf.Tokens[token])}
	}
	if !strings.Contains(addr, "-listen:") {
		return vge.Dial(ctx, addr, opts)
	}
	l, err := vge.Listen(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Accept(ctx)
}

func command(ctx context.Context, g *vge.Guest, s scenario) *vge.Cmd {
	if argv, ok := s["argv"].([]any); ok {
		args := make([]string, len(argv))
		for i, a := range argv {
			args[i] = a.(string)
		}
		return g.Command(ctx, args[0], args[1:]...)
	}
	return g.ShellCommand(ctx, s.str("shell"))
}

func run(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
	c := command(ctx, g, s)
	if env, ok := s["env"].(map[string]any); ok {
		c.Env = map[string]string{}
		for k, v := range env {
			if v == nil {
				c.Unsetenv = append(c.Unsetenv, k)
			} else {
				c.Env[k] = v.(string)
			}
		}
	}
	c.ClearEnv = s["clear_env"] == true
	c.Dir = s.str("cwd")
	c.Merge = s["merge"] == true
	if pty, ok := s["pty"].(map[string]any); ok {
		c.PTY = &vge.PTY{Cols: uint32(pty["cols"].(float64)), Rows: uint32(pty["rows"].(float64))}
	}
	c.Timeout = time.Duration(s.num("timeout_ms")) * time.Millisecond
	if _, ok := s["stdin_size"]; ok {
		c.Stdin = bytes.NewReader(pattern(s.num("stdin_size")))
	}
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	// As os/exec's, Start fails for a program that cannot start: an *ExitError with status "error".
	var r vge.ExitResult
	var ee *vge.ExitError
	if err := c.Start(); errors.As(err, &ee) {
		r = ee.Result
	} else if err != nil {
		return nil, err
	} else {
		if sig := s.str("signal"); sig != "" {
			if err := c.Kill(sig); err != nil {
				return nil, err
			}
		}
		if r, err = c.Wait(); err != nil {
			return nil, err
		}
	}
	out := result{
		"status": r.Status, "returncode": r.ExitCode(),
		"stdout_len": stdout.Len(), "stdout_sha256": digest(stdout.Bytes()), "stderr_len": stderr.Len(),
	}
	if stdout.Len() <= 65536 {
		out["stdout"] = stdout.String()
	}
	if stderr.Len() <= 65536 {
		out["stderr"] = stderr.String()
	}
	if r.Signal != "" {
		out["signal"] = r.Signal
	}
	if r.Errno != "" {
		out["errno"] = r.Errno
	}
	if s["check_child_gone"] == true {
		out["child_gone"] = childGone(ctx, g, strings.TrimSpace(stdout.String()))
	}
	return out, nil
}

// childGone asks `kill -0` a few times: a killed process may linger a moment as a zombie.
func childGone(ctx context.Context, g *vge.Guest, pid string) bool {
	for i := 0; i < 50; i++ {
		if err := g.Command(ctx, "kill", "-0", pid).Run(); err != nil {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func fileRoundtrip(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
	path := filepath.Join(conf.Work, "file-"+s.str("id"))
	mode, _ := strconv.ParseUint(s.str("mode"), 8, 32)
	m := uint32(mode)
	data := pattern(s.num("size"))
	if err := g.PutFile(ctx, path, bytes.NewReader(data), int64(len(data)), &vge.PutOptions{Mode: &m}); err != nil {
		return nil, err
	}
	var got bytes.Buffer
	opts := &vge.GetOptions{}
	if m := s.num("max_size"); m > 0 {
		opts.MaxSize = int64(m)
	}
	info, err := g.GetFile(ctx, path, &got, opts)
	if err != nil {
		return nil, err
	}
	return result{"size": info.Size, "mode": strconv.FormatUint(uint64(info.Mode), 8), "sha256": digest(got.Bytes())}, nil
}

func dirRoundtrip(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
	src := filepath.Join(conf.Work, "tree-src")
	steps := []error{
		os.MkdirAll(filepath.Join(src, "bin"), 0o755),
		os.Mkdir(filepath.Join(src, "empty"), 0o700),
		os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha\n"), 0o644),
		os.WriteFile(filepath.Join(src, "bin/run.sh"), []byte("#!/bin/sh\n"), 0o755),
		os.Symlink("a.txt", filepath.Join(src, "link")),
		os.Chmod(filepath.Join(src, "empty"), 0o700),
	}
	if err := errors.Join(steps...); err != nil {
		return nil, err
	}
	remote := filepath.Join(conf.Work, "tree-remote")
	back := filepath.Join(conf.Work, "tree-back")
	if _, err := g.PutDir(ctx, src, remote); err != nil {
		return nil, err
	}
	if _, err := g.GetDir(ctx, remote, back, &vge.GetDirOptions{PreserveMode: true}); err != nil {
		return nil, err
	}
	list := func(dir string) string {
		out, _ := g.Command(ctx, "sh", "-c", s.str("list"), "sh", dir).Output()
		return string(out)
	}
	return result{"remote": list(remote), "back": list(back)}, nil
}

// jobs detaches on one connection, then lists, attaches and kills on another: the job outlives the first.
func jobs(ctx context.Context, s scenario) (result, error) {
	tag := conf.Tag + "-" + s.str("id")
	first, err := open(ctx, "unix", "")
	if err != nil {
		return nil, err
	}
	c := first.ShellCommand(ctx, s.str("shell"))
	c.Detach = &vge.Detach{Tag: tag}
	if err := c.Start(); err != nil {
		return nil, err
	}
	first.Close()
	g, err := open(ctx, "unix", "")
	if err != nil {
		return nil, err
	}
	defer g.Close()
	listed := ""
	for i := 0; i < 100; i++ {
		list, err := g.List(ctx)
		if err != nil {
			return nil, err
		}
		for _, j := range list {
			if j.Tag == tag {
				listed = j.State
				if j.Stdout.Total >= 3 {
					i = 100
				}
			}
		}
		if i < 100 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	p, err := g.Attach(ctx, vge.ByTag(tag), nil)
	if err != nil {
		return nil, err
	}
	if err := g.KillJob(ctx, vge.ByTag(tag), "SIGKILL"); err != nil {
		return nil, err
	}
	replay, err := io.ReadAll(p.Stdout())
	if err != nil {
		return nil, err
	}
	r, err := p.Wait(ctx)
	if err != nil {
		return nil, err
	}
	return result{"listed": listed, "replay": string(replay), "status": r.Status, "signal": r.Signal, "returncode": r.ExitCode()}, nil
}

// jobsTaken: a second job with the tag of a running one does not start (EEXIST); the first runs on.
func jobsTaken(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
	tag := conf.Tag + "-" + s.str("id")
	first := g.ShellCommand(ctx, s.str("shell"))
	first.Detach = &vge.Detach{Tag: tag}
	if err := first.Start(); err != nil {
		return nil, err
	}
	second := g.ShellCommand(ctx, s.str("shell"))
	second.Detach = &vge.Detach{Tag: tag}
	var r vge.ExitResult
	var ee *vge.ExitError
	if err := second.Run(); errors.As(err, &ee) {
		r = ee.Result
	} else if err != nil {
		return nil, err
	}
	list, err := g.List(ctx)
	if err != nil {
		return nil, err
	}
	listed := ""
	for _, j := range list {
		if j.Tag == tag {
			listed = j.State
		}
	}
	if err := g.KillJob(ctx, vge.ByTag(tag), "SIGKILL"); err != nil {
		return nil, err
	}
	return result{"first": listed, "status": r.Status, "errno": r.Errno}, nil
}

func tcpEcho(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
	c, err := g.DialTCP(ctx, "127.0.0.1", conf.EchoPort)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(pattern(s.num("size")))
		sent <- errors.Join(err, c.CloseWrite())
	}()
	got, err := io.ReadAll(c)
	if err := errors.Join(err, <-sent); err != nil {
		return nil, err
	}
	return result{"len": len(got), "sha256": digest(got)}, nil
}

func hello(ctx context.Context, s scenario) (result, error) {
	g, err := open(ctx, s.str("address"), s.str("token"))
	if err != nil {
		return nil, err
	}
	defer g.Close()
	out, err := g.Command(ctx, "echo", "ok").Output()
	if err != nil {
		return nil, err
	}
	return result{"stdout": string(out)}, nil
}

// ops maps each scenario op of scenarios.json to its step.
var ops = map[string]func(context.Context, *vge.Guest, scenario) (result, error){
	"run":            run,
	"file_roundtrip": fileRoundtrip,
	"file_get": func(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
		info, err := g.GetFile(ctx, s.str("path"), io.Discard, nil)
		return result{"size": info.Size}, err
	},
	"dir_roundtrip": dirRoundtrip,
	"jobs":          func(ctx context.Context, _ *vge.Guest, s scenario) (result, error) { return jobs(ctx, s) },
	"tcp_echo":      tcpEcho,
	"jobs_taken":    jobsTaken,
	"dir_get": func(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
		n, err := g.GetDir(ctx, s.str("path"), filepath.Join(conf.Work, "dir-"+s.str("id")), nil)
		return result{"files": n.Files}, err
	},
	"tcp_refused": func(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
		c, err := g.DialTCP(ctx, "127.0.0.1", conf.RefusedPort)
		if err == nil {
			c.Close()
		}
		return result{"opened": err == nil}, err
	},
	"tcp_open": func(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
		c, err := g.DialTCP(ctx, s.str("host"), s.num("port"))
		if err == nil {
			c.Close()
		}
		return result{"opened": err == nil}, err
	},
	"file_put": func(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
		data := pattern(s.num("size"))
		return result{"size": len(data)}, g.PutFile(ctx, s.str("path"), bytes.NewReader(data), int64(len(data)), nil)
	},
	"kill_job": func(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
		return result{"killed": true}, g.KillJob(ctx, vge.ByTag(s.str("tag")), "SIGKILL")
	},
	"attach": func(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
		p, err := g.Attach(ctx, vge.ByTag(s.str("tag")), nil)
		if err != nil {
			return nil, err
		}
		r, err := p.Wait(ctx)
		return result{"status": r.Status}, err
	},
	"hello": func(ctx context.Context, _ *vge.Guest, s scenario) (result, error) { return hello(ctx, s) },
}

func runScenario(ctx context.Context, g *vge.Guest, s scenario) (result, error) {
	op, ok := ops[s.str("op")]
	if !ok {
		return result{"unknown_op": s.str("op")}, nil
	}
	return op(ctx, g, s)
}

func main() {
	if err := json.Unmarshal([]byte(os.Getenv("VGE_CONF")), &conf); err != nil {
		fmt.Fprintln(os.Stderr, "conformance: $VGE_CONF:", err)
		os.Exit(2)
	}
	raw, err := os.ReadFile(conf.Scenarios)
	var file struct{ Scenarios []scenario }
	if err == nil {
		err = json.Unmarshal(raw, &file)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	g, err := open(ctx, "unix", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		os.Exit(1)
	}
	defer g.Close()
	enc := json.NewEncoder(os.Stdout)
	for _, s := range file.Scenarios {
		r, err := runScenario(ctx, g, s)
		if err != nil {
			r = errorResult(err)
		}
		enc.Encode(map[string]any{"id": s["id"], "result": r})
	}
}
