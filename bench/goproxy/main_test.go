package main

import (
	"bufio"
	"net"
	"testing"
)

// TestRelay sends lines through the proxy to an echo server and reads them
// back, then checks that closing the client ends the upstream connection.
func TestRelay(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	upClosed := make(chan struct{})
	go func() {
		c, err := echo.Accept()
		if err != nil {
			return
		}
		defer close(upClosed)
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if _, err := c.Write([]byte(line)); err != nil {
				return
			}
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, echo.Addr().String())

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for _, msg := range []string{"one\n", "two\n", "a longer line of text\n"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if got != msg {
			t.Fatalf("echo through the proxy: got %q, want %q", got, msg)
		}
	}
	c.Close()
	<-upClosed // the upstream side sees EOF once the client has gone
}
