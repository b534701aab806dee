package pgmask

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/lineage"
	"github.com/countersign/countersign/internal/mask"
)

// ResultFilter has the method set of postgres.ResultFilter (this package
// cannot import the engine, which calls it), so a *Masker's Filter can be
// returned from postgres.Options.Filter as it is.
type ResultFilter interface {
	RowDescription(m *pgproto3.RowDescription) error
	DataRow(m *pgproto3.DataRow) error
	CopyData(m *pgproto3.CopyData) error
}

// Options configures a Masker. Rules and Querier are required.
type Options struct {
	// Rules returns a resource's compiled masking rules; nil: the resource
	// masks nothing.
	Rules func(resource string) *mask.Rules
	// Querier returns a connection (a pool: it is shared by the resource's
	// sessions) to the resource's upstream, logged in with the resource's
	// own credentials, for catalog lookups.
	Querier func(resource string) (lineage.Querier, error)
	// CacheTTL bounds how long catalog answers (relations by OID, types,
	// view definitions) are kept; default 30s. A schema change is seen at
	// the latest after it, at once after Invalidate.
	CacheTTL time.Duration
	// MaxCopyRow bounds one COPY row buffered across CopyData messages;
	// default 64 MiB (a client must not grow the gateway without limit).
	MaxCopyRow int
	Logger     *slog.Logger
}

// lookupTimeout bounds the catalog lookups one result may cause.
const lookupTimeout = 10 * time.Second

// Masker masks the results of every session of a gateway. Create it with
// New; safe for concurrent use.
type Masker struct {
	o   Options
	log *slog.Logger

	mu   sync.Mutex
	cats map[string]*resCatalog

	quotes quoteTracker // sessions whose messages have quoted parts masked
}

// New checks the options and returns a Masker.
func New(o Options) (*Masker, error) {
	switch {
	case o.Rules == nil:
		return nil, errors.New("pgmask: Options.Rules is required")
	case o.Querier == nil:
		return nil, errors.New("pgmask: Options.Querier is required")
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 30 * time.Second
	}
	if o.MaxCopyRow <= 0 {
		o.MaxCopyRow = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Masker{o: o, log: o.Logger.With("component", "pgmask"), cats: map[string]*resCatalog{}}, nil
}

// Filter makes the result filter of one allowed operation; wire it as
// postgres.Options.Filter. It returns nil (rows pass untouched) when the
// resource has no masking rules or an unmask grant covers the operation
// (v.Unmask).
func (m *Masker) Filter(s *guard.Session, op *guard.Operation, v guard.Verdict) ResultFilter {
	if v.Decision != guard.Allow || v.Unmask {
		return nil
	}
	rules := m.o.Rules(s.Resource)
	if rules == nil {
		return nil
	}
	return &result{m: m, res: s.Resource, op: op, rules: rules, roles: guard.RoleNames(s.Identity)}
}

// Invalidate forgets what is cached about a resource's catalog; the engine
// calls it after an operation that may have changed the schema.
func (m *Masker) Invalidate(resource string) {
	m.mu.Lock()
	delete(m.cats, resource)
	m.mu.Unlock()
}

// catalog returns the resource's cached catalog, made anew after CacheTTL.
func (m *Masker) catalog(resource string) (*resCatalog, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.cats[resource]; ok && time.Since(c.born) < m.o.CacheTTL {
		return c, nil
	}
	q, err := m.o.Querier(resource)
	if err != nil {
		return nil, err
	}
	c := newResCatalog(q)
	m.cats[resource] = c
	return c, nil
}

func lookupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), lookupTimeout)
}
