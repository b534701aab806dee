package postgres

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/countersign/countersign/internal/sqlkind/pgcatalog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Reads that run code are settled in the upstream's own catalog: every
// function, operator, cast and view a statement uses is looked up there
// (sqlkind's Resolve). The engine keeps one cached catalog per resource,
// shared by its sessions and backed by a small pool logged in with the
// resource's credentials, and closes the pools on Shutdown.

// catalogPoolConns bounds the catalog pool of one resource: lookups are
// rare (each name is cached for the catalog's TTL) and short.
const catalogPoolConns = 2

// resolveTimeout bounds one catalog query; past it the statement is
// unknown.
const resolveTimeout = 10 * time.Second

type catalogs struct {
	mu     sync.Mutex
	byKey  map[string]*resCatalog
	closed bool
}

// resCatalog is one resource's catalog. Its cache is replaced whole after
// an operation that may change the catalog (schema, privilege, admin or
// unknown kind) ran through the gateway, so a view created or replaced a
// moment ago is not read from a stale (or negative) entry. Changes made
// outside the gateway are seen after the catalog's TTL (one minute).
type resCatalog struct {
	cur  atomic.Pointer[pgcatalog.Catalog]
	pool timeoutQuerier
}

func (rc *resCatalog) catalog() sqlkind.Catalog { return rc.cur.Load() }

func (rc *resCatalog) invalidate() { rc.cur.Store(pgcatalog.New(rc.pool, pgcatalog.Options{})) }

// catalogKey identifies a resource's upstream login: a reloaded resource
// with other credentials gets a catalog of its own.
func catalogKey(r *config.Resource) string {
	t := r.UpstreamTLS
	return strings.Join([]string{r.Name, r.Address, r.Database, r.Username, r.Password, t.Mode, t.CAFile, t.ServerName}, "\x00")
}

var errEngineClosed = errors.New("the gateway is shutting down")

// catalogFor returns the resource's shared catalog, made on first use.
func (e *Engine) catalogFor(res *config.Resource) (*resCatalog, error) {
	key := catalogKey(res)
	e.cats.mu.Lock()
	defer e.cats.mu.Unlock()
	if e.cats.closed {
		return nil, errEngineClosed
	}
	if rc, ok := e.cats.byKey[key]; ok {
		return rc, nil
	}
	pool, err := catalogPool(res)
	if err != nil {
		return nil, err
	}
	rc := &resCatalog{pool: timeoutQuerier{pool}}
	rc.invalidate()
	e.cats.byKey[key] = rc
	return rc, nil
}

// catalog returns the catalog the session's statements are resolved in.
func (c *conn) catalog() (sqlkind.Catalog, error) {
	if c.e.o.Catalog != nil {
		if c.cat == nil {
			cat, err := c.e.o.Catalog(c.res)
			if err != nil {
				return nil, err
			}
			c.cat = cat
		}
		return c.cat, nil
	}
	if c.rcat == nil {
		rc, err := c.e.catalogFor(c.res)
		if err != nil {
			return nil, err
		}
		c.rcat = rc
	}
	return c.rcat.catalog(), nil
}

// mayChangeCatalog reports whether an operation of kind k may create,
// replace or drop what the catalog answers about.
func mayChangeCatalog(k sqlkind.Kind) bool {
	return k != sqlkind.Read && k != sqlkind.Write
}

// catalogPool makes the pool; it connects on first lookup, not here.
func catalogPool(res *config.Resource) (*pgxpool.Pool, error) {
	return UpstreamPool(res, "countersign catalog", catalogPoolConns)
}

// UpstreamPool makes a small pool logged in with the resource's own
// credentials (and its upstream TLS settings), for the gateway's own
// catalog lookups. It connects on first use, not here.
func UpstreamPool(res *config.Resource, applicationName string, maxConns int32) (*pgxpool.Pool, error) {
	cc, err := upstreamConfig(res, map[string]string{"application_name": applicationName})
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	pc.ConnConfig.Config = *cc
	pc.MaxConns = maxConns
	pc.MinConns = 0
	pc.MaxConnIdleTime = 5 * time.Minute
	return pgxpool.NewWithConfig(context.Background(), pc)
}

// closeCatalogs closes every pool; later lookups fail (and so refuse).
func (e *Engine) closeCatalogs() {
	e.cats.mu.Lock()
	all := e.cats.byKey
	e.cats.byKey, e.cats.closed = nil, true
	e.cats.mu.Unlock()
	for _, rc := range all {
		rc.pool.p.Close()
	}
}

// resolve settles cl in the catalog. Resolve returns at once, without a
// lookup, when nothing is left to settle; otherwise every name is answered
// from the catalog's cache and only names not seen within its TTL cost a
// round trip.
func (c *conn) resolve(cl sqlkind.Classification) sqlkind.Classification {
	cat, err := c.catalog()
	if err != nil {
		c.e.log.Warn("postgres catalog unavailable; the operation is unknown", "session", c.id, "error", err)
		return unresolved(cl)
	}
	// No deadline here: Resolve mostly answers from the cache, and a
	// context with a timer per statement costs more than the lookup. The
	// catalog's queries are bounded by timeoutQuerier.
	out, err := c.e.o.Classifier.Resolve(c.ctx, cl, cat)
	if err != nil {
		c.e.log.Warn("postgres catalog lookup failed; the operation is unknown", "session", c.id, "error", err)
		return unresolved(cl)
	}
	return out
}

// timeoutQuerier bounds each catalog query by resolveTimeout; the deadline
// lasts until its rows are closed.
type timeoutQuerier struct{ p *pgxpool.Pool }

func (q timeoutQuerier) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	rows, err := q.p.Query(ctx, sql, args...)
	if err != nil {
		cancel()
		return nil, err
	}
	return cancelRows{rows, cancel}, nil
}

type cancelRows struct {
	pgx.Rows
	cancel context.CancelFunc
}

func (r cancelRows) Close() {
	r.Rows.Close()
	r.cancel()
}

// unresolved makes cl unknown. The cause goes to the log only: it may name
// the upstream login.
func unresolved(cl sqlkind.Classification) sqlkind.Classification {
	if cl.Kind != sqlkind.Unknown {
		cl.Kind = sqlkind.Unknown
		cl.Reason = "the upstream catalog could not be read to check what the statement uses, so it counts as unknown; try again, and tell an admin if it persists"
	}
	return cl
}
