package mysql

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/listen"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/sqlkind"
)

// Classifier classifies one operation's SQL text in MySQL's dialect
// (internal/sqlkind's *MySQLClassifier satisfies it).
type Classifier interface {
	Classify(text string) sqlkind.Classification
	// Statements splits text into its statements with what the engine
	// tracks per connection (USE, SET, LOAD DATA LOCAL); nil if it does not
	// parse.
	Statements(text string) []sqlkind.MySQLStatement
	// ClassifySession is Classify with SQL-level EXECUTE resolved against
	// the statements the session prepared (name -> text); it also returns
	// the texts the EXECUTEs run.
	ClassifySession(text string, prepared map[string]string) (sqlkind.Classification, []string)
}

// sessionStatements is a Classifier that classifies a text and splits it
// into its statements in one step (internal/sqlkind's does).
type sessionStatements interface {
	ClassifySessionStatements(text string, prepared map[string]string) (sqlkind.Classification, []string, []sqlkind.MySQLStatement)
}

// classifySession is the Classifier's ClassifySession and Statements of
// text.
func (e *Engine) classifySession(text string, prepared map[string]string) (sqlkind.Classification, []string, []sqlkind.MySQLStatement) {
	if s, ok := e.o.Classifier.(sessionStatements); ok {
		return s.ClassifySessionStatements(text, prepared)
	}
	class, executes := e.o.Classifier.ClassifySession(text, prepared)
	return class, executes, e.o.Classifier.Statements(text)
}

// Authenticator checks a countersign token presented as the password of a
// resource (internal/identity satisfies it).
type Authenticator interface {
	AuthenticateResource(ctx context.Context, secret, resource string) (identity.Token, error)
}

// Options configures an Engine. Resource, Auth, Guard, Recorder and
// Classifier are required.
type Options struct {
	// TLS is the gateway's certificate; nil offers no TLS (tests only: no
	// token is then asked for off loopback).
	TLS *tls.Config
	// AllowPlaintextLoopback lets loopback clients send their token without TLS.
	AllowPlaintextLoopback bool
	// Resource looks a configured resource up by the name a client gives as
	// its user name.
	Resource   func(name string) (*config.Resource, bool)
	Auth       Authenticator
	Guard      guard.Guard
	Recorder   recording.Recorder
	Classifier Classifier
	// Filter, when set, makes a ResultFilter for each allowed operation
	// (masking). Nil passes rows through unchanged.
	Filter func(s *guard.Session, op *guard.Operation, v guard.Verdict) ResultFilter
	// Capture, when set, makes the filter that masks the copies of result
	// rows a resource's `record: {results: N}` keeps in the recording
	// (capture.go); it must mask for the trail, whatever the session's
	// roles or unmask grants. It may return nil: the values need no
	// masking. Nil Capture: no rows are kept, whatever the resource says.
	Capture func(s *guard.Session, op *guard.Operation, v guard.Verdict) ResultFilter
	Limits  config.Limits
	Logger  *slog.Logger
}

// Defaults applied when Limits leaves a field zero.
const (
	defaultMaxMessageBytes = 64 << 20
	// maxLogicalPacket is MySQL's own max_allowed_packet ceiling (1 GiB).
	maxLogicalPacket       = 1 << 30
	defaultStartupTimeout  = 10 * time.Second
	upstreamConnectTimeout = 10 * time.Second
)

// Engine is the MySQL wire-protocol gateway. Create it with New.
type Engine struct {
	o   Options
	log *slog.Logger

	// srv accepts clients, isolates panics and drains sessions on
	// shutdown (the lifecycle both engines share).
	srv *listen.Server

	views viewCache // which relations are views, for masking
	bulk  bulkOffer // whether clients are offered bulk execute (bulk.go)
}

// New checks the options and returns an Engine.
func New(o Options) (*Engine, error) {
	switch {
	case o.Resource == nil:
		return nil, errors.New("mysql engine: Options.Resource is required")
	case o.Auth == nil:
		return nil, errors.New("mysql engine: Options.Auth is required")
	case o.Guard == nil:
		return nil, errors.New("mysql engine: Options.Guard is required")
	case o.Recorder == nil:
		return nil, errors.New("mysql engine: Options.Recorder is required")
	case o.Classifier == nil:
		return nil, errors.New("mysql engine: Options.Classifier is required")
	case o.Limits.MaxMessageBytes < 0:
		return nil, fmt.Errorf("mysql engine: limits.max_message_bytes is %d; it must be positive", o.Limits.MaxMessageBytes)
	}
	if o.Limits.MaxMessageBytes == 0 {
		o.Limits.MaxMessageBytes = defaultMaxMessageBytes
	}
	if o.Limits.MaxMessageBytes > maxLogicalPacket {
		o.Limits.MaxMessageBytes = maxLogicalPacket
	}
	if o.Limits.StartupTimeout <= 0 {
		o.Limits.StartupTimeout = defaultStartupTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Engine{
		o:   o,
		log: o.Logger.With("engine", "mysql"),
	}
	e.srv = listen.New("mysql", e.log, func(nc net.Conn) listen.Session { return session{newConn(e, nc)} })
	return e, nil
}

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = listen.ErrClosed

// Serve accepts clients on ln until Shutdown; it then returns ErrClosed.
func (e *Engine) Serve(ln net.Listener) error { return e.srv.Serve(ln) }

// Shutdown stops accepting, lets sessions end on their own until ctx ends,
// then cuts the remaining ones.
func (e *Engine) Shutdown(ctx context.Context) error {

	return e.srv.Shutdown(ctx)
}
