package lineage

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Querier is what PGCatalog needs of a connection: *pgx.Conn (one
// goroutine at a time) and *pgxpool.Pool (concurrent) both have it.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Begin(ctx context.Context) (pgx.Tx, error)
}

// PGCatalog is a Catalog (and FunctionCatalog) read from a live PostgreSQL
// server's system catalogs, with a cache. Answers are cached until
// Invalidate: call it after a statement that changed the schema (DDL,
// SET search_path). Safe for concurrent use when the Querier is.
type PGCatalog struct {
	q          Querier
	searchPath []string // nil: the catalog connection's own search_path
	shared     *pgCache
	mu         sync.Mutex
	resolved   map[string]resolved
}

type resolved struct {
	schema, table string
	kind          byte
	ok            bool
}

// pgCache holds what does not depend on the search path, shared between a
// PGCatalog and those made WithSearchPath from it.
type pgCache struct {
	mu      sync.Mutex
	columns map[[2]string][]string
	views   map[[2]string]viewDef
	funcs   map[string]bool
}

// maxCacheEntries bounds each cache: names come from client statements, so
// a client must not be able to grow the gateway's memory without limit.
// A full cache is emptied and refilled.
const maxCacheEntries = 10000

func put[K comparable, V any](m map[K]V, k K, v V) {
	if len(m) >= maxCacheEntries {
		clear(m)
	}
	m[k] = v
}

type viewDef struct {
	def string
	ok  bool
}

// NewPGCatalog reads the catalog through q.
func NewPGCatalog(q Querier) *PGCatalog {
	return &PGCatalog{q: q, shared: newPGCache(), resolved: map[string]resolved{}}
}

func newPGCache() *pgCache {
	return &pgCache{columns: map[[2]string][]string{}, views: map[[2]string]viewDef{}, funcs: map[string]bool{}}
}

// WithSearchPath returns a catalog that resolves unqualified names through
// the given schemas (a client session's search_path, "$user" already
// replaced), sharing this one's cache of columns and views. pg_catalog is
// searched first unless listed, as PostgreSQL does.
func (c *PGCatalog) WithSearchPath(schemas []string) *PGCatalog {
	path := append([]string(nil), schemas...)
	if !contains(path, "pg_catalog") {
		path = append([]string{"pg_catalog"}, path...)
	}
	return &PGCatalog{q: c.q, searchPath: path, shared: c.shared, resolved: map[string]resolved{}}
}

// Invalidate forgets everything cached, here and in the catalogs sharing
// this one's cache.
func (c *PGCatalog) Invalidate() {
	c.mu.Lock()
	clear(c.resolved)
	c.mu.Unlock()
	c.shared.mu.Lock()
	clear(c.shared.columns)
	clear(c.shared.views)
	clear(c.shared.funcs)
	c.shared.mu.Unlock()
}

const resolveByRegclass = `
SELECT n.nspname, c.relname, c.relkind::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_catalog.to_regclass($1)`

// resolveByPath finds an unqualified name in the first schema of $2 that
// has it; a qualified name only in its schema.
const resolveByPath = `
WITH p AS (SELECT pg_catalog.parse_ident($1) AS parts)
SELECT n.nspname, c.relname, c.relkind::text
FROM p,
  LATERAL unnest(CASE WHEN cardinality(p.parts) = 1 THEN $2::text[]
                      ELSE ARRAY[p.parts[cardinality(p.parts) - 1]] END) WITH ORDINALITY AS s(nsp, ord),
  pg_catalog.pg_namespace n, pg_catalog.pg_class c
WHERE n.nspname = s.nsp AND c.relnamespace = n.oid AND c.relname = p.parts[cardinality(p.parts)]
ORDER BY s.ord LIMIT 1`

// Resolve implements Catalog.
func (c *PGCatalog) Resolve(ctx context.Context, name string) (string, string, byte, bool, error) {
	c.mu.Lock()
	r, hit := c.resolved[name]
	c.mu.Unlock()
	if hit {
		return r.schema, r.table, r.kind, r.ok, nil
	}
	var row pgx.Row
	if c.searchPath == nil {
		row = c.q.QueryRow(ctx, resolveByRegclass, name)
	} else {
		row = c.q.QueryRow(ctx, resolveByPath, name, c.searchPath)
	}
	var kind string
	err := row.Scan(&r.schema, &r.table, &kind)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		r = resolved{}
	case err != nil:
		return "", "", 0, false, err
	default:
		r.ok = true
		if len(kind) == 1 {
			r.kind = kind[0]
		}
	}
	c.mu.Lock()
	put(c.resolved, name, r)
	c.mu.Unlock()
	return r.schema, r.table, r.kind, r.ok, nil
}

const columnsQuery = `
SELECT a.attname
FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`

// Columns implements Catalog.
func (c *PGCatalog) Columns(ctx context.Context, schema, table string) ([]string, error) {
	key := [2]string{schema, table}
	c.shared.mu.Lock()
	cols, hit := c.shared.columns[key]
	c.shared.mu.Unlock()
	if hit {
		return cols, nil
	}
	rows, err := c.q.Query(ctx, columnsQuery, schema, table)
	if err != nil {
		return nil, err
	}
	cols, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	c.shared.mu.Lock()
	put(c.shared.columns, key, cols)
	c.shared.mu.Unlock()
	return cols, nil
}

const viewQuery = `
SELECT pg_catalog.pg_get_viewdef(c.oid)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('v', 'm')`

// ViewDefinition implements Catalog. The definition is printed with only
// pg_catalog on the search path, so every other name in it is qualified
// and reads the same whatever the client's search_path.
func (c *PGCatalog) ViewDefinition(ctx context.Context, schema, view string) (string, bool, error) {
	key := [2]string{schema, view}
	c.shared.mu.Lock()
	v, hit := c.shared.views[key]
	c.shared.mu.Unlock()
	if hit {
		return v.def, v.ok, nil
	}
	v, err := c.readView(ctx, schema, view)
	if err != nil {
		return "", false, err
	}
	c.shared.mu.Lock()
	put(c.shared.views, key, v)
	c.shared.mu.Unlock()
	return v.def, v.ok, nil
}

func (c *PGCatalog) readView(ctx context.Context, schema, view string) (viewDef, error) {
	tx, err := c.q.Begin(ctx)
	if err != nil {
		return viewDef{}, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = pg_catalog"); err != nil {
		return viewDef{}, err
	}
	var v viewDef
	err = tx.QueryRow(ctx, viewQuery, schema, view).Scan(&v.def)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return viewDef{}, nil
	case err != nil:
		return viewDef{}, err
	}
	v.ok = true
	return v, nil
}

// argsOnlyQuery: every function of the name is a built-in (pg_catalog) and
// there is at least one. Which built-ins read tables by name is the
// analyzer's deny list, not the catalog's.
const argsOnlyQuery = `
SELECT count(*) > 0 AND bool_and(p.pronamespace = 'pg_catalog'::regnamespace)
FROM pg_catalog.pg_proc p WHERE p.proname = $1`

// ArgsOnly implements FunctionCatalog.
func (c *PGCatalog) ArgsOnly(ctx context.Context, name string) (bool, error) {
	c.shared.mu.Lock()
	ok, hit := c.shared.funcs[name]
	c.shared.mu.Unlock()
	if hit {
		return ok, nil
	}
	if err := c.q.QueryRow(ctx, argsOnlyQuery, name).Scan(&ok); err != nil {
		return false, err
	}
	c.shared.mu.Lock()
	put(c.shared.funcs, name, ok)
	c.shared.mu.Unlock()
	return ok, nil
}
