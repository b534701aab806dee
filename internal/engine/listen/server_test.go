package listen

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// echo is a line-echo session: "panic" panics, anything else comes back.
// Kill and Fail write the reason and close, as an engine's error message
// would.
type echo struct {
	nc   net.Conn
	once sync.Once
}

func (e *echo) Serve() {
	r := bufio.NewReader(e.nc)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimSpace(line) == "panic" {
			panic("boom")
		}
		if _, err := e.nc.Write([]byte(line)); err != nil {
			return
		}
	}
}

func (e *echo) Kill(reason string) { e.end("killed: " + reason) }
func (e *echo) Fail(reason string) { e.end("failed: " + reason) }
func (e *echo) ID() string         { return e.nc.RemoteAddr().String() }

func (e *echo) end(msg string) {
	e.once.Do(func() {
		e.nc.Write([]byte(msg + "\n"))
		e.nc.Close()
	})
}

func start(t *testing.T) (*Server, string, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New("echo", nil, func(nc net.Conn) Session { return &echo{nc: nc} })
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	return s, ln.Addr().String(), served
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, bufio.NewReader(c)
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string) string {
	t.Helper()
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", line, err)
	}
	return strings.TrimSpace(got)
}

func waitActive(t *testing.T, s *Server, n int) {
	t.Helper()
	for i := 0; s.Active() != n; i++ {
		if i > 3000 {
			t.Fatalf("active sessions: %d, want %d", s.Active(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPanicEndsOnlyItsSession(t *testing.T) {
	s, addr, _ := start(t)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		s.Shutdown(ctx)
	}()
	good, goodR := dial(t, addr)
	bad, badR := dial(t, addr)
	if got := roundTrip(t, good, goodR, "hello"); got != "hello" {
		t.Fatalf("echo: %q", got)
	}
	if got := roundTrip(t, bad, badR, "panic"); got != "failed: internal error" {
		t.Fatalf("panicking session said %q, want the internal error", got)
	}
	if got := roundTrip(t, good, goodR, "still here"); got != "still here" {
		t.Fatalf("other session after a panic: %q", got)
	}
	waitActive(t, s, 1)
}

func TestShutdown(t *testing.T) {
	tests := []struct {
		name     string
		leave    bool // the client leaves on its own before the deadline
		wantErr  error
		wantLine string
	}{
		{"sessions end on their own", true, nil, ""},
		{"sessions cut at the deadline", false, context.DeadlineExceeded, "killed: the gateway is shutting down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, addr, served := start(t)
			c, r := dial(t, addr)
			roundTrip(t, c, r, "hi")
			waitActive(t, s, 1)
			if tt.leave {
				go func() { time.Sleep(50 * time.Millisecond); c.Close() }()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if err := s.Shutdown(ctx); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Shutdown: %v, want %v", err, tt.wantErr)
			}
			if err := <-served; !errors.Is(err, ErrClosed) {
				t.Fatalf("Serve after Shutdown: %v, want ErrClosed", err)
			}
			if tt.wantLine != "" {
				got, _ := r.ReadString('\n')
				if strings.TrimSpace(got) != tt.wantLine {
					t.Fatalf("client saw %q, want %q", got, tt.wantLine)
				}
			}
			if n := s.Active(); n != 0 {
				t.Fatalf("%d sessions left after Shutdown", n)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if err := s.Serve(ln); !errors.Is(err, ErrClosed) {
				t.Fatalf("Serve on a shut-down server: %v, want ErrClosed", err)
			}
			if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				t.Fatal("the old listener still accepts after Shutdown")
			}
		})
	}
}
