package postgres

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/listen"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Classifier classifies one operation's SQL text with the real PostgreSQL
// grammar (internal/sqlkind's *PostgresClassifier satisfies it).
type Classifier interface {
	// Analyze analyzes text once: its Statements (with what the engine
	// tracks per connection: PREPARE, DEALLOCATE, SET; nil if it does not
	// parse; shared with the classifier's cache, so read only) and its
	// classification (ClassifyWithPrepared, whose lookup answers for
	// SQL-level EXECUTE names; nil: EXECUTE is unknown).
	Analyze(text string) sqlkind.Analysis
	// Resolve settles a classification in the upstream catalog; an error
	// makes the operation unknown.
	Resolve(ctx context.Context, c sqlkind.Classification, cat sqlkind.Catalog) (sqlkind.Classification, error)
}

// Authenticator checks a countersign token presented as the password of a
// resource (internal/identity satisfies it).
type Authenticator interface {
	AuthenticateResource(ctx context.Context, secret, resource string) (identity.Token, error)
}

// Options configures an Engine. Resource, Auth, Guard, Recorder and
// Classifier are required.
type Options struct {
	// TLS is the gateway's certificate; nil answers SSLRequest with 'N'
	// (tests only: no password is then asked for off loopback).
	TLS *tls.Config
	// AllowPlaintextLoopback lets loopback clients send their token without TLS.
	AllowPlaintextLoopback bool
	// Resource looks a configured resource up by the name a client gives as
	// its database.
	Resource   func(name string) (*config.Resource, bool)
	Auth       Authenticator
	Guard      guard.Guard
	Recorder   recording.Recorder
	Classifier Classifier
	// Catalog, when set, gives the catalog a resource's statements are
	// resolved in (the caller owns it). Nil: the engine keeps one cached
	// internal/sqlkind/pgcatalog per resource over a small pool logged in
	// with the resource's credentials, and closes it on Shutdown.
	Catalog func(res *config.Resource) (sqlkind.Catalog, error)
	// Filter, when set, makes a ResultFilter for each operation (masking).
	// Nil passes rows through unchanged.
	Filter func(s *guard.Session, op *guard.Operation, v guard.Verdict) ResultFilter
	// Capture, when set, makes the filter that masks the copies of result
	// rows a resource's `record: {results: N}` keeps in the recording
	// (capture.go); it must mask for the trail, whatever the session's
	// roles or unmask grants. It may return nil: the values need no
	// masking. Nil Capture: no rows are kept, whatever the resource says.
	Capture func(s *guard.Session, op *guard.Operation, v guard.Verdict) ResultFilter
	// Messages, when set, masks the texts of the upstream's errors,
	// notices and notifications before they reach the client (they can
	// quote values: "Key (email)=(a@b.io) already exists").
	Messages MessageMasker
	Limits   config.Limits
	// ReplicaID is carried in the top byte of every BackendKeyData process
	// id, so a cancel can be routed to the replica holding the session.
	ReplicaID uint8
	// CancelRelay, when set, forwards cancels naming another replica's
	// session to that replica and delivers those forwarded to this one
	// (replicas sharing a PostgreSQL store). Nil: one gateway.
	CancelRelay CancelRelay
	Logger      *slog.Logger
}

// MessageMasker masks upstream message texts in place.
type MessageMasker interface {
	MaskMessage(s *guard.Session, m pgproto3.BackendMessage)
}

// Defaults applied when Limits leaves a field zero.
const (
	defaultMaxMessageBytes = 64 << 20
	defaultStartupTimeout  = 10 * time.Second
	forwardTimeout         = 10 * time.Second // a cancel forwarded to another replica
)

// Engine is the PostgreSQL wire-protocol gateway. Create it with New.
type Engine struct {
	o       Options
	log     *slog.Logger
	cancels *cancelMap
	cats    catalogs
	// forwards bounds the cancels sent to other replicas.
	forwards forwardLimit
	// stopRelay stops cancels forwarded by other replicas (nil: none).
	stopRelay func()
	// refreshes counts the gateway's own reads of session state (tests
	// and benchmarks check they happen only when needed).
	refreshes atomic.Int64

	// srv accepts clients, isolates panics and drains sessions on
	// shutdown (the lifecycle both engines share).
	srv *listen.Server
}

// New checks the options and returns an Engine.
func New(o Options) (*Engine, error) {
	switch {
	case o.Resource == nil:
		return nil, errors.New("postgres engine: Options.Resource is required")
	case o.Auth == nil:
		return nil, errors.New("postgres engine: Options.Auth is required")
	case o.Guard == nil:
		return nil, errors.New("postgres engine: Options.Guard is required")
	case o.Recorder == nil:
		return nil, errors.New("postgres engine: Options.Recorder is required")
	case o.Classifier == nil:
		return nil, errors.New("postgres engine: Options.Classifier is required")
	case o.Limits.MaxMessageBytes < 0:
		return nil, fmt.Errorf("postgres engine: limits.max_message_bytes is %d; it must be positive", o.Limits.MaxMessageBytes)
	}
	if o.Limits.MaxMessageBytes == 0 {
		o.Limits.MaxMessageBytes = defaultMaxMessageBytes
	}
	if o.Limits.StartupTimeout <= 0 {
		o.Limits.StartupTimeout = defaultStartupTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Engine{
		o:       o,
		log:     o.Logger.With("engine", "postgres"),
		cancels: newCancelMap(o.ReplicaID),
		cats:    catalogs{byKey: map[string]*resCatalog{}},
	}
	e.srv = listen.New("postgres", e.log, func(nc net.Conn) listen.Session { return session{newConn(e, nc)} })
	if o.CancelRelay != nil {
		e.stopRelay = o.CancelRelay.ReceiveCancels(e.cancel)
	}
	return e, nil
}

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = listen.ErrClosed

// Serve accepts clients on ln until Shutdown; it then returns ErrClosed.
func (e *Engine) Serve(ln net.Listener) error { return e.srv.Serve(ln) }

// Shutdown stops accepting, lets sessions end on their own until ctx ends,
// then cuts the remaining ones, and closes the catalog pools.
func (e *Engine) Shutdown(ctx context.Context) error {
	defer e.closeCatalogs()
	if e.stopRelay != nil {
		defer e.stopRelay()
	}
	return e.srv.Shutdown(ctx)
}

// activeSessions counts the connections being served.
func (e *Engine) activeSessions() int { return e.srv.Active() }
