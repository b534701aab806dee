package mysql

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/sqlkind"
)

// viewTTL bounds how long a resource's view catalog is trusted: a view
// created or redefined outside the gateway is seen at the latest after it
// (the PostgreSQL engine's catalog has the same 30 seconds). The engine
// forgets the catalog after every operation of its own sessions that is
// neither a read nor a write (CREATE OR REPLACE VIEW, DROP VIEW, ...).
const viewTTL = 30 * time.Second

// Queries that load a resource's view catalog. A view whose definition the
// upstream user may not read (no SHOW VIEW) is listed with an empty
// definition, or only in TABLES: it is still a view, traced to nothing
// (its columns are masked whole).
const (
	relationQuery    = "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE = 'VIEW' FROM information_schema.TABLES"
	viewDefQuery     = "SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS"
	viewColumnsQuery = "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME FROM information_schema.COLUMNS c " +
		"JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME " +
		"WHERE t.TABLE_TYPE = 'VIEW' ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
	// tableColumnsQuery lists the columns SELECT * gives of one table:
	// INVISIBLE ones are left out by the server (system-versioning's
	// hidden columns are not listed at all).
	// The names are sent as hex literals: no escaping rule of the server's
	// sql_mode can change what they say.
	tableColumnsQuery = "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = CONVERT(X'%x' USING utf8mb4) " +
		"AND TABLE_NAME = CONVERT(X'%x' USING utf8mb4) AND EXTRA NOT LIKE '%%INVISIBLE%%' ORDER BY ORDINAL_POSITION"
)

// viewCache holds each resource's view catalog. The column definitions of
// a result that reads a view cannot be trusted for lineage (MariaDB names
// the view, the view's alias, or for a TEMPTABLE view the base table with
// the view's column name), so a statement that reads a view is traced
// through its text and the views' definitions instead (viewlineage.go).
// Every operation that names a relation also has the definitions of the
// views it names classified (viewkind.go).
type viewCache struct {
	mu   sync.Mutex
	sets map[string]*viewCatalog
	// gen counts each resource's forgets: a load that started before a
	// forget does not store what it read (it may predate the DDL).
	gen map[string]uint64
	// flights are the loads in progress, by resource: a session that
	// needs a catalog while one loads waits for it instead of logging in
	// too (every session would at once when the TTL ends).
	flights map[string]*viewFlight
	// epoch counts every forget, of any resource: a connection keeps the
	// catalog it last used (viewkind.go) until the epoch moves on or the
	// TTL ends, without taking mu for every statement.
	epoch atomic.Uint64

	classifyOnce sync.Once
	classifier   *sqlkind.MySQLClassifier // checks view definitions' functions
}

// viewCatalog is one resource's views at one time. It is read-only once
// loaded, except for the memo of analyzed definitions.
type viewCatalog struct {
	at     time.Time
	views  map[viewKey]*viewInfo
	lower  map[string]bool // lower-cased "schema.name" of every view
	names  map[string]bool // lower-cased name of every view, in any schema
	tables map[string]bool // lower-cased "schema.name" of every other relation
	cls    *sqlkind.MySQLClassifier
	// fetchColumns reads a table's columns upstream, for SELECT * over a
	// table in a statement that reads a view; nil: not known.
	fetchColumns func(schema, table string) ([]string, error)

	mu       sync.Mutex
	memo     map[viewKey][]colLin
	baseCols map[viewKey][]string
	kinds    map[viewKey]viewVerdict // what reading each view runs (viewkind.go)

	indexOnce sync.Once
	// index is every relation by lower-cased schema, then lower-cased
	// name: the views of that name in any letter case, none for a table.
	index map[string]map[string][]viewKey
}

// tableColumns returns the columns SELECT * gives of a base table, or nil
// when they cannot be read (a temporary table is not listed). Kept with
// the catalog, so they are as fresh as it is.
func (c *viewCatalog) tableColumns(schema, table string) []string {
	k := viewKey{schema, table}
	c.mu.Lock()
	cols, ok := c.baseCols[k]
	c.mu.Unlock()
	if ok || c.fetchColumns == nil {
		return cols
	}
	cols, err := c.fetchColumns(schema, table)
	if err != nil {
		return nil // not kept: tried again by the next statement
	}
	c.mu.Lock()
	if c.baseCols == nil {
		c.baseCols = map[viewKey][]string{}
	}
	c.baseCols[k] = cols
	c.mu.Unlock()
	return cols
}

type viewKey struct{ schema, name string }

// viewInfo is one view: its definition as the server stores it ("" when
// hidden from the upstream user) and its column names in order.
type viewInfo struct {
	def  string
	cols []string
}

// isView reports whether schema.table is a view, in any letter case (with
// lower_case_table_names=0 a table and a view may differ only in case:
// both then count as views, masked rather than trusted).
func (c *viewCatalog) isView(schema, table string) bool {
	return c.lower[strings.ToLower(schema+"."+table)]
}

// viewAnywhere reports whether a view of that name (any letter case)
// exists in some schema. An unqualified name in a prepared statement is
// resolved in the schema current when it was prepared, which may not be
// the session's schema when it is executed.
func (c *viewCatalog) viewAnywhere(table string) bool {
	return c.names[strings.ToLower(table)]
}

// known reports whether schema.table is a relation the catalog lists.
func (c *viewCatalog) known(schema, table string) bool {
	k := strings.ToLower(schema + "." + table)
	return c.lower[k] || c.tables[k]
}

// view returns the view of exactly that name, or nil.
func (c *viewCatalog) view(schema, name string) *viewInfo {
	return c.views[viewKey{schema, name}]
}

// viewLookup is the view catalog for the results of one operation, loaded
// at most once, on first use, and reloaded at most once more when the
// operation names a relation the cached catalog does not list (a view
// created outside the gateway since the catalog was loaded must not pass
// for a table until the TTL ends).
type viewLookup struct {
	since time.Time // when the operation was decided
	load  func(force bool) (*viewCatalog, error)

	once, freshOnce sync.Once
	cat             *viewCatalog
}

// catalog returns the catalog, or nil when it could not be loaded (then
// every relation counts as a view whose lineage is unknown).
func (l *viewLookup) catalog() *viewCatalog {
	if l == nil {
		return nil
	}
	l.once.Do(func() {
		l.cat, _ = l.load(false)
	})
	return l.cat
}

// fresh returns a catalog loaded after the operation was decided (so
// after its statement was sent): what it does not list was not a view
// the upstream user could see when the statement ran (a temporary table,
// which information_schema shows only to its own session).
func (l *viewLookup) fresh() *viewCatalog {
	cat := l.catalog()
	if cat == nil || cat.at.After(l.since) {
		return cat
	}
	l.freshOnce.Do(func() {
		l.cat, _ = l.load(true)
	})
	return l.cat
}

// isView returns the view lookup for one operation's results of the
// resource (named for what the masker first asks of it).
func (e *Engine) isView(res *config.Resource) *viewLookup {
	since := time.Now()
	return &viewLookup{since: since, load: func(force bool) (*viewCatalog, error) {
		after := time.Now().Add(-viewTTL)
		if force {
			after = since
		}
		cat, err := e.views.loadAfter(res, after)
		if err != nil {
			e.log.Warn("loading the views of a resource failed; columns of results that read a relation are masked whole", "resource", res.Name, "error", err)
		}
		return cat, err
	}}
}

// viewFlight is one catalog load in progress; cat and err are set when
// done is closed.
type viewFlight struct {
	start time.Time
	done  chan struct{}
	cat   *viewCatalog
	err   error
}

// loadAfter returns a catalog of the resource loaded at or after the
// time after: the cached one when it is that recent, else the load in
// progress when it started then or later, else a new load.
func (v *viewCache) loadAfter(res *config.Resource, after time.Time) (*viewCatalog, error) {
	v.mu.Lock()
	if s := v.sets[res.Name]; s != nil && !s.at.Before(after) {
		v.mu.Unlock()
		return s, nil
	}
	if f := v.flights[res.Name]; f != nil && !f.start.Before(after) {
		v.mu.Unlock()
		<-f.done
		return f.cat, f.err
	}
	f := &viewFlight{start: time.Now(), done: make(chan struct{})}
	if v.flights == nil {
		v.flights = map[string]*viewFlight{}
	}
	v.flights[res.Name] = f
	gen := v.gen[res.Name]
	v.mu.Unlock()
	defer close(f.done)
	v.classifyOnce.Do(func() { v.classifier = sqlkind.NewMySQL(sqlkind.MySQLOptions{CacheSize: -1}) })
	f.cat, f.err = fetchViews(res)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.flights[res.Name] == f {
		delete(v.flights, res.Name)
	}
	if f.err != nil {
		f.cat = nil
		return nil, f.err
	}
	f.cat.at = f.start // what it lists was there when the load began
	f.cat.cls = v.classifier
	f.cat.fetchColumns = func(schema, table string) ([]string, error) { return fetchTableColumns(res, schema, table) }
	if s := v.sets[res.Name]; v.gen[res.Name] == gen && (s == nil || s.at.Before(f.cat.at)) {
		if v.sets == nil {
			v.sets = map[string]*viewCatalog{}
		}
		v.sets[res.Name] = f.cat
	}
	return f.cat, nil
}

// fetchViews reads the views, their definitions and columns on a short
// login with the resource's credentials.
func fetchViews(res *config.Resource) (*viewCatalog, error) {
	ctx, cancel := context.WithTimeout(context.Background(), upstreamConnectTimeout)
	defer cancel()
	up, err := dialUpstream(ctx, res, "", 0)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	cat := &viewCatalog{at: time.Now(), views: map[viewKey]*viewInfo{}, lower: map[string]bool{}, names: map[string]bool{}, tables: map[string]bool{}}
	add := func(k viewKey) *viewInfo {
		vi := cat.views[k]
		if vi == nil {
			vi = &viewInfo{}
			cat.views[k] = vi
			cat.lower[strings.ToLower(k.schema+"."+k.name)] = true
			cat.names[strings.ToLower(k.name)] = true
		}
		return vi
	}
	r, err := up.Execute(relationQuery)
	if err != nil {
		return nil, err
	}
	for i := range r.Values {
		k := rowKey(r, i)
		if isView, _ := r.GetInt(i, 2); isView != 0 {
			add(k)
		} else {
			cat.tables[strings.ToLower(k.schema+"."+k.name)] = true
		}
	}
	if r, err = up.Execute(viewDefQuery); err != nil {
		return nil, err
	}
	for i := range r.Values {
		add(rowKey(r, i)).def, _ = r.GetString(i, 2)
	}
	if r, err = up.Execute(viewColumnsQuery); err != nil {
		return nil, err
	}
	for i := range r.Values {
		vi := add(rowKey(r, i))
		name, _ := r.GetString(i, 2)
		vi.cols = append(vi.cols, name)
	}
	return cat, nil
}

// fetchTableColumns reads one table's columns on a short login.
func fetchTableColumns(res *config.Resource, schema, table string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), upstreamConnectTimeout)
	defer cancel()
	up, err := dialUpstream(ctx, res, "", 0)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	r, err := up.Execute(fmt.Sprintf(tableColumnsQuery, schema, table))
	if err != nil {
		return nil, err
	}
	cols := make([]string, len(r.Values))
	for i := range r.Values {
		cols[i], _ = r.GetString(i, 0)
	}
	return cols, nil
}

func rowKey(r interface {
	GetString(row, column int) (string, error)
}, i int) viewKey {
	s, _ := r.GetString(i, 0)
	t, _ := r.GetString(i, 1)
	return viewKey{s, t}
}

// forget drops a resource's catalog after a schema operation. A load in
// progress is left to finish but joined by no one any more (it may
// predate the DDL).
func (v *viewCache) forget(resource string) {
	v.mu.Lock()
	delete(v.sets, resource)
	delete(v.flights, resource)
	if v.gen == nil {
		v.gen = map[string]uint64{}
	}
	v.gen[resource]++
	v.epoch.Add(1)
	v.mu.Unlock()
}

// lookup says whether schema.name is a relation the catalog lists (in
// any letter case) and gives the views it may be: the server compares
// names in a letter case its settings decide, so every view whose name
// differs only in case counts.
func (c *viewCatalog) lookup(schema, name string) (known bool, views []viewKey) {
	c.indexOnce.Do(c.buildIndex)
	names, ok := c.index[strings.ToLower(schema)]
	if !ok {
		return false, nil
	}
	views, known = names[strings.ToLower(name)]
	return known, views
}

// buildIndex fills index from views and tables (whose keys are split at
// their first dot: a schema name with a dot in it only makes a relation
// look unlisted, which costs a reload, never a missed view).
func (c *viewCatalog) buildIndex() {
	c.index = map[string]map[string][]viewKey{}
	add := func(schema string) map[string][]viewKey {
		names := c.index[schema]
		if names == nil {
			names = map[string][]viewKey{}
			c.index[schema] = names
		}
		return names
	}
	for k := range c.tables {
		schema, name, _ := strings.Cut(k, ".")
		names := add(schema)
		if _, ok := names[name]; !ok {
			names[name] = nil
		}
	}
	for k := range c.views {
		schema, name := strings.ToLower(k.schema), strings.ToLower(k.name)
		names := add(schema)
		names[name] = append(names[name], k)
	}
}
