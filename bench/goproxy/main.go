package main

import (
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: goproxy LISTEN_ADDR UPSTREAM_ADDR")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "goproxy:", err)
		os.Exit(1)
	}
	err = serve(ln, os.Args[2])
	fmt.Fprintln(os.Stderr, "goproxy:", err)
	os.Exit(1)
}

// serve accepts until ln is closed, relaying each connection to upstream;
// it returns the error that ended it.
func serve(ln net.Listener, upstream string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go relay(c, upstream)
	}
}

// relay copies both ways until either side closes, then closes both.
func relay(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(u, c)
		u.Close() // ends the other copy when the client goes
		close(done)
	}()
	io.Copy(c, u)
	c.Close()
	<-done
}
