package listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// ErrClosed is returned by Serve once Shutdown has begun.
var ErrClosed = errors.New("engine: shut down")

// Session is one client connection as an engine runs it.
type Session interface {
	// Serve runs the session until the client leaves or it is killed.
	Serve()
	// Kill ends the session from outside (shutdown), telling the client why.
	Kill(reason string)
	// Fail ends the session after an internal error (a recovered panic).
	Fail(reason string)
	// ID names the session in logs.
	ID() string
}

// Server accepts clients on any number of listeners. Create it with New.
type Server struct {
	name       string
	log        *slog.Logger
	newSession func(net.Conn) Session

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[Session]struct{}
	closing   bool
	wg        sync.WaitGroup
}

// New returns a Server that makes a Session of each accepted connection.
// name ("postgres", "mysql") labels its log lines.
func New(name string, log *slog.Logger, newSession func(net.Conn) Session) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{
		name:       name,
		log:        log,
		newSession: newSession,
		listeners:  map[net.Listener]struct{}{},
		sessions:   map[Session]struct{}{},
	}
}

// Serve accepts clients on ln until Shutdown; it then returns ErrClosed.
// Any other accept error (other than a timeout) is returned as it is.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: back off
				// instead of spinning, as net/http does.
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.wg.Add(1)
		go s.handle(nc)
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// handle runs one client connection; a panic ends only that connection.
func (s *Server) handle(nc net.Conn) {
	defer s.wg.Done()
	defer nc.Close()
	sess := s.newSession(nc)
	defer func() {
		if r := recover(); r != nil {
			// Last line of defence: nothing on user input should panic,
			// but if something does, only this connection ends.
			s.log.Error("panic in "+s.name+" session", "session", sess.ID(),
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			sess.Fail("internal error")
		}
	}()
	if !s.track(sess) {
		return
	}
	defer s.untrack(sess)
	sess.Serve()
}

func (s *Server) track(sess Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[sess] = struct{}{}
	return true
}

func (s *Server) untrack(sess Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
}

// Shutdown stops accepting, lets sessions end on their own until ctx ends,
// then kills the remaining ones and waits for them to go. It returns
// ctx.Err() when sessions had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for sess := range s.sessions {
		sess.Kill("the gateway is shutting down")
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// Active counts the sessions being served.
func (s *Server) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
