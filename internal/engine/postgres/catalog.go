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

// A schema change in a transaction is invisible to the catalog's own
// connections until it commits, and a cache filled before the commit
// would keep the old answer for its TTL. So from the moment the client
// loop allows an operation that may change the catalog (decide makes it
// catLast) until the relay saw the upstream idle after it (its transaction
// committed or rolled back: txEnded), the session resolves nothing: a
// statement whose kind depends on a lookup is unknown. The relay finishes
// operations in order, so once the last one's transaction ended every
// earlier one's has too. Then the client loop replaces the resource's
// cache before the next decision, so it reads the catalog anew. With no
// such operation open the hot path checks one pointer.

// catalogAfter is the relay's part for one finished operation: a change
// that ran drops the cache at once (for the other sessions: what they see
// is what committed), and the relay keeps it until its transaction ends.
func (c *conn) catalogAfter(op *operation) {
	if !op.catChange {
		return
	}
	c.catTx = op
	if c.rcat != nil && !op.skipped {
		c.rcat.invalidate()
	}
}

// catalogTxEnd runs at each ReadyForQuery of a batch: once the upstream is
// idle, what the kept operation (and every one before it) did is
// committed, or gone.
func (c *conn) catalogTxEnd(after byte) {
	if after != 'I' || c.catTx == nil {
		return
	}
	c.catTx.txEnded.Store(true)
	c.catTx = nil
}

// catalogSettled reports whether the session may resolve names: no
// operation that may have changed the catalog is in a transaction still
// open. When the last one's transaction ended, the cache is dropped first.
func (c *conn) catalogSettled() bool {
	if !c.catLast.txEnded.Load() {
		return false
	}
	c.catLast = nil
	if c.rcat != nil {
		c.rcat.invalidate()
	}
	return true
}

// errCatalogBlind is what blindCatalog answers every question with.
var errCatalogBlind = errors.New("the session's open transaction may have changed the catalog")

// blindCatalog is the catalog of a session whose open transaction may
// have changed it: every lookup fails, so any statement that needs one is
// unknown, and one that needs none keeps its kind.
type blindCatalog struct{}

func (blindCatalog) Functions(context.Context, []string) (map[string]sqlkind.FuncInfo, error) {
	return nil, errCatalogBlind
}

func (blindCatalog) Operators(context.Context, []string) (map[string]sqlkind.FuncInfo, error) {
	return nil, errCatalogBlind
}

func (blindCatalog) Types(context.Context, []string) (map[string]bool, error) {
	return nil, errCatalogBlind
}

func (blindCatalog) Relations(context.Context, []string) (map[string]sqlkind.RelationInfo, error) {
	return nil, errCatalogBlind
}

func (blindCatalog) UserImplicitCasts(context.Context) ([]string, error) {
	return nil, errCatalogBlind
}

func (blindCatalog) CodeTypes(context.Context) ([]string, error) {
	return nil, errCatalogBlind
}

// blindReason is the Reason of a statement made unknown by blindCatalog.
const blindReason = "a schema, privilege or unknown operation ran in this session's open transaction (or is still " +
	"running), and the catalog countersign checks functions, operators, casts and views in cannot see its " +
	"uncommitted changes, so what this statement runs cannot be checked and it counts as unknown; " +
	"it is checked normally once the transaction commits or rolls back"

// resolveBlind settles cl while the session's catalog cannot be trusted.
func (c *conn) resolveBlind(cl sqlkind.Classification) sqlkind.Classification {
	out, err := c.e.o.Classifier.Resolve(c.ctx, cl, blindCatalog{})
	if err == nil {
		return out // nothing needed a lookup
	}
	cl.Kind, cl.Reason = sqlkind.Unknown, blindReason
	return cl
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
	if c.catLast != nil && !c.catalogSettled() {
		return c.resolveBlind(cl)
	}
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
