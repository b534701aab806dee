package pgcatalog

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5"
)

// Querier is what Catalog needs from pgx: a *pgxpool.Pool, or a *pgx.Conn
// used by one goroutine at a time.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Options configures a Catalog. The zero value is the default.
type Options struct {
	// TTL is how long an answer is reused; zero means one minute. A function
	// replaced upstream is seen at the latest after TTL.
	TTL time.Duration
	// MaxEntries bounds each cache; zero means 10,000. A full cache is emptied.
	MaxEntries int
}

// Catalog is a sqlkind.Catalog for one resource. Safe for concurrent use when
// its Querier is.
type Catalog struct {
	q                       Querier
	ttl                     time.Duration
	max                     int
	now                     func() time.Time
	funcs, ops, types, rels cache
	casts                   cache // one entry, "": the implicit casts that run user code
	code                    cache // one entry, "": the code types (codeTypes)
}

// codeTypes are the database's types whose input runs user code
// (codeTypesSQL).
type codeTypes struct {
	oids  []uint32
	names []string
}

var (
	_ sqlkind.Catalog         = (*Catalog)(nil)
	_ sqlkind.CastCatalog     = (*Catalog)(nil)
	_ sqlkind.CodeTypeCatalog = (*Catalog)(nil)
)

// New returns a Catalog that queries q.
func New(q Querier, opts Options) *Catalog {
	c := &Catalog{q: q, ttl: opts.TTL, max: opts.MaxEntries, now: time.Now}
	if c.ttl == 0 {
		c.ttl = time.Minute
	}
	if c.max == 0 {
		c.max = 10000
	}
	return c
}

// cache holds answers by name; found=false records "not in the catalog".
type cache struct {
	mu sync.RWMutex // lookups, the common case, only read
	m  map[string]entry
}

type entry struct {
	v       any
	found   bool
	expires time.Time
}

// lookup puts the cached answers for names into out (made on the first
// answer: a lookup that finds nothing, the common case for functions,
// allocates nothing) and returns it with the names to query.
func lookup[V any](c *Catalog, ch *cache, names []string, out map[string]V) (map[string]V, []string) {
	ch.mu.RLock()
	defer ch.mu.RUnlock()
	now := c.now()
	var missing []string
	for _, n := range names {
		e, ok := ch.m[n]
		switch {
		case !ok || now.After(e.expires):
			missing = append(missing, n)
		case e.found:
			if out == nil {
				out = make(map[string]V, len(names))
			}
			out[n] = e.v.(V)
		}
	}
	return out, missing
}

func (c *Catalog) store(ch *cache, asked []string, found map[string]any) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.m == nil || len(ch.m)+len(asked) > c.max {
		ch.m = make(map[string]entry, len(asked))
	}
	exp := c.now().Add(c.ttl)
	for _, n := range asked {
		v, ok := found[n]
		ch.m[n] = entry{v: v, found: ok, expires: exp}
	}
}

// cached answers names from ch, querying the rest with query. The map it
// returns is nil when no name was found; callers only read it.
func cached[V any](ctx context.Context, c *Catalog, ch *cache, names []string,
	query func(ctx context.Context, schemas, bases []string) (map[string]any, error)) (map[string]V, error) {
	out, missing := lookup[V](c, ch, names, nil)
	if len(missing) > 0 {
		schemas, bases := split(missing)
		found, err := query(ctx, schemas, bases)
		if err != nil {
			return nil, err
		}
		c.store(ch, missing, found)
		for k, v := range found {
			if out == nil {
				out = make(map[string]V, len(found))
			}
			out[k] = v.(V)
		}
	}
	return out, nil
}

// split separates "schema.name" into schema and name; an unqualified name
// has schema "" (any schema). A name with more parts keeps all but the last
// as its schema, which matches no schema, so it is not found: fail closed.
func split(names []string) (schemas, bases []string) {
	for _, n := range names {
		i := strings.LastIndexByte(n, '.')
		if i < 0 {
			schemas, bases = append(schemas, ""), append(bases, n)
			continue
		}
		schemas, bases = append(schemas, n[:i]), append(bases, n[i+1:])
	}
	return schemas, bases
}

// joinName is split's inverse, for keying results.
func joinName(schema, base string) string {
	if schema == "" {
		return base
	}
	return schema + "." + base
}
