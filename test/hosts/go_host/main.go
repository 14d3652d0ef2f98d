// go_host: a host for vsock_guest_exec's persistent mode, written the way the original README's Go
// example writes one: a u16 little-endian length from binary.LittleEndian.PutUint16, then the command,
// written in a loop until every byte is out.
//
// It listens on a Unix socket instead of AF_VSOCK so that it can run anywhere; the agent dials it with
// `vsock_guest_exec --unix PATH persistent`.
//
//	go_host -unix /tmp/h.sock ['echo hello world' ...]
//
// Prints "listening PATH" once ready, sends each command as a frame, half-closes, and waits for the agent
// to close its side. Exit 0 when all of that happened.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"time"
)

func writeAll(w io.Writer, b []byte) error {
	for len(b) > 0 {
		n, err := w.Write(b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// sendCommand writes one persistent-mode frame: length, then command.
func sendCommand(conn net.Conn, cmd string) error {
	if len(cmd) > 2048 {
		return fmt.Errorf("command is %d bytes; the agent takes at most 2048", len(cmd))
	}
	header := make([]byte, 2)
	binary.LittleEndian.PutUint16(header, uint16(len(cmd)))
	if err := writeAll(conn, header); err != nil {
		return err
	}
	return writeAll(conn, []byte(cmd))
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("go_host: ")
	path := flag.String("unix", "", "Unix socket path to listen on (must not exist)")
	timeout := flag.Duration("timeout", 20*time.Second, "give up waiting for the agent after this long")
	flag.Parse()
	if *path == "" {
		log.Fatal("-unix PATH is required")
	}
	cmds := flag.Args()
	if len(cmds) == 0 {
		cmds = []string{"echo hello world"}
	}

	l, err := net.Listen("unix", *path)
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(*path)
	fmt.Printf("listening %s\n", *path)

	l.(*net.UnixListener).SetDeadline(time.Now().Add(*timeout))
	conn, err := l.Accept()
	if err != nil {
		log.Fatal(err)
	}
	l.Close()
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(*timeout))

	for _, cmd := range cmds {
		if err := sendCommand(conn, cmd); err != nil {
			log.Fatal(err)
		}
	}
	// The agent serves until EOF, then exits; its close is our EOF.
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		log.Fatal(err)
	}
	fmt.Println("agent closed the connection")
}
