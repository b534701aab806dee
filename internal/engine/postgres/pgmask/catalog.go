package pgmask

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/lineage"
	"github.com/countersign/countersign/internal/mask"
)

// resCatalog is what pgmask knows of one resource's upstream catalog: the
// relations RowDescriptions name by OID, column types, and lineage's own
// catalog for views and computed columns. It lives for Options.CacheTTL.
type resCatalog struct {
	q    lineage.Querier
	cat  *lineage.PGCatalog
	born time.Time

	mu    sync.Mutex
	rels  map[uint32]*relation
	types map[uint32]textKind
	// colTypes: (schema, table) -> column -> kind, for COPY (no types on
	// the wire).
	colTypes map[[2]string]map[string]textKind
	anc      map[[2]string][][2]string         // (schema, table) -> ancestor tables
	shapes   map[uint32]typeShape              // binary decoding of non-built-in types (scan.go)
	gen      map[[2]string]map[string][]string // (schema, table) -> generated column -> the columns it is computed from
}

// maxCached bounds each cache: OIDs come from the upstream, names from
// client statements; a full cache is emptied and refilled.
const maxCached = 10000

func newResCatalog(q lineage.Querier) *resCatalog {
	return &resCatalog{q: q, cat: lineage.NewPGCatalog(q), born: time.Now(),
		rels: map[uint32]*relation{}, types: map[uint32]textKind{}, colTypes: map[[2]string]map[string]textKind{}, anc: map[[2]string][][2]string{},
		shapes: map[uint32]typeShape{}, gen: map[[2]string]map[string][]string{}}
}

func putCached[K comparable, V any](m map[K]V, k K, v V) {
	if len(m) >= maxCached {
		clear(m)
	}
	m[k] = v
}

// relation is a table, view or other relation, with the lineage of each
// of its columns by attribute number.
type relation struct {
	cols map[int16]mask.Column
	// view: the columns are a view's, each possibly an expression over
	// its sources (lineage cannot tell a plain reference from one).
	view bool
	// generated: a table's generated columns, computed from the others
	// (their sources include those), by attribute number.
	generated map[int16]bool
}

const relationQuery = `
SELECT n.nspname, c.relname, c.relkind::text, a.attnum, a.attname
FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.oid = $1`

// ancestorsQuery lists the tables a partition or inheritance child belongs
// to: a rule on the parent covers the child's columns too, or selecting
// from a partition directly would dodge it.
const ancestorsQuery = `
WITH RECURSIVE anc(oid, depth) AS (
  SELECT i.inhparent, 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = $1
  UNION
  SELECT i.inhparent, anc.depth + 1 FROM pg_catalog.pg_inherits i JOIN anc ON i.inhrelid = anc.oid WHERE anc.depth < 32)
SELECT DISTINCT n.nspname, c.relname
FROM anc JOIN pg_catalog.pg_class c ON c.oid = anc.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`

// relation returns the relation with this OID; nil (with no error) when
// the upstream has no such relation any more.
func (c *resCatalog) relation(ctx context.Context, oid uint32) (*relation, error) {
	c.mu.Lock()
	r, hit := c.rels[oid]
	c.mu.Unlock()
	if hit {
		return r, nil
	}
	r, err := c.readRelation(ctx, oid)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	putCached(c.rels, oid, r)
	c.mu.Unlock()
	return r, nil
}

type attr struct {
	num  int16
	name string
}

func (c *resCatalog) readRelation(ctx context.Context, oid uint32) (*relation, error) {
	rows, err := c.q.Query(ctx, relationQuery, oid)
	if err != nil {
		return nil, err
	}
	var schema, table, kind string
	var attrs []attr
	for rows.Next() {
		var a attr
		if err := rows.Scan(&schema, &table, &kind, &a.num, &a.name); err != nil {
			rows.Close()
			return nil, err
		}
		attrs = append(attrs, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(attrs) == 0 {
		return nil, nil
	}
	if kind == string(lineage.KindView) || kind == string(lineage.KindMatView) {
		return c.viewRelation(ctx, schema, table, attrs)
	}
	return c.tableRelation(ctx, oid, schema, table, attrs)
}

func (c *resCatalog) tableRelation(ctx context.Context, oid uint32, schema, table string, attrs []attr) (*relation, error) {
	owners := []mask.Source{{Schema: schema, Table: table}}
	rows, err := c.q.Query(ctx, ancestorsQuery, oid)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var s mask.Source
		if err := rows.Scan(&s.Schema, &s.Table); err != nil {
			rows.Close()
			return nil, err
		}
		owners = append(owners, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	gen, err := c.generatedCols(ctx, schema, table)
	if err != nil {
		return nil, err
	}
	r := &relation{cols: make(map[int16]mask.Column, len(attrs)), generated: map[int16]bool{}}
	for _, a := range attrs {
		names := append([]string{a.name}, gen[a.name]...)
		r.generated[a.num] = len(names) > 1
		var srcs []mask.Source
		for _, o := range owners {
			for _, n := range names {
				srcs = append(srcs, mask.Source{Schema: o.Schema, Table: o.Table, Column: n})
			}
		}
		r.cols[a.num] = mask.Column{Name: a.name, Resolved: true, Sources: srcs}
	}
	return r, nil
}

// generatedQuery lists, for each generated column of a table, the columns
// its expression reads (pg_depend records them): a column computed from a
// masked one must not pass as a plain column nobody masks.
const generatedQuery = `
SELECT a.attname, ra.attname
FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND dep.objid = d.oid
    AND dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND dep.refobjid = a.attrelid AND dep.refobjsubid > 0
  JOIN pg_catalog.pg_attribute ra ON ra.attrelid = a.attrelid AND ra.attnum = dep.refobjsubid
WHERE n.nspname = $1 AND c.relname = $2 AND a.attgenerated <> ''`

// generatedCols returns a table's generated columns and the columns each
// is computed from.
func (c *resCatalog) generatedCols(ctx context.Context, schema, table string) (map[string][]string, error) {
	key := [2]string{schema, table}
	c.mu.Lock()
	gen, hit := c.gen[key]
	c.mu.Unlock()
	if hit {
		return gen, nil
	}
	rows, err := c.q.Query(ctx, generatedQuery, schema, table)
	if err != nil {
		return nil, err
	}
	pairs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var p [2]string
		return p, r.Scan(&p[0], &p[1])
	})
	if err != nil {
		return nil, err
	}
	gen = map[string][]string{}
	for _, p := range pairs {
		gen[p[0]] = append(gen[p[0]], p[1])
	}
	c.mu.Lock()
	putCached(c.gen, key, gen)
	c.mu.Unlock()
	return gen, nil
}

// viewRelation resolves a view's columns through its definition,
// recursively (lineage reads views of views): PostgreSQL reports a view's
// columns under the view, not under the tables it reads.
func (c *resCatalog) viewRelation(ctx context.Context, schema, view string, attrs []attr) (*relation, error) {
	r := &relation{cols: make(map[int16]mask.Column, len(attrs)), view: true}
	res, err := lineage.AnalyzeContext(ctx, "SELECT * FROM "+quoteIdent(schema)+"."+quoteIdent(view), c.cat)
	if err != nil {
		return nil, err
	}
	byName := map[string]mask.Column{}
	if res.ColumnsFor(len(res.Columns)) != nil {
		for _, col := range res.ColumnsFor(len(res.Columns)) {
			if _, dup := byName[col.Name]; dup {
				col.Resolved = false // two columns of one name: do not guess
			}
			byName[col.Name] = col
		}
	}
	for _, a := range attrs {
		col, ok := byName[a.name]
		if !ok {
			col = mask.Column{Name: a.name}
		}
		r.cols[a.num] = col
	}
	return r, nil
}

// column returns the lineage of a RowDescription field: its relation's
// column, or an unresolved column when the relation or column is unknown.
// plain is true for a table's own column (its value is the stored value,
// so a shape-keeping strategy may apply); false for a view's column.
func (c *resCatalog) column(ctx context.Context, oid uint32, attnum int16, name string) (col mask.Column, plain bool, err error) {
	if attnum <= 0 {
		// A system column (ctid, xmin, tableoid) holds no user data.
		return mask.Column{Name: name, Resolved: attnum < 0}, true, nil
	}
	r, err := c.relation(ctx, oid)
	if err != nil || r == nil {
		return mask.Column{Name: name}, false, err
	}
	col, ok := r.cols[attnum]
	if !ok {
		return mask.Column{Name: name}, false, nil
	}
	col.Name = name
	return col, !r.view && !r.generated[attnum], nil
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// textKind says how a masked value of a type is written.
type textKind uint8

const (
	kindOther textKind = iota // not text: a masked value is sent as NULL
	kindText                  // text, varchar, bpchar, name, xml, citext, text domains
	kindJSON                  // json: a masked value is sent as a JSON string
	kindJSONB                 // jsonb: as json, behind a version byte in binary
)

// builtinKinds answers the common types without a lookup.
var builtinKinds = map[uint32]textKind{
	25: kindText, 1043: kindText, 1042: kindText, 19: kindText, 142: kindText, 705: kindText,
	114: kindJSON, 3802: kindJSONB,
	16: kindOther, 17: kindOther, 18: kindOther, 20: kindOther, 21: kindOther, 23: kindOther,
	26: kindOther, 700: kindOther, 701: kindOther, 1082: kindOther, 1083: kindOther, 1114: kindOther,
	1184: kindOther, 1186: kindOther, 1700: kindOther, 2950: kindOther, 1009: kindOther, 1015: kindOther,
}

// fixedShape are the built-in types whose text form cannot carry free
// text (bool, date, time, timestamp, timestamptz, interval, timetz, uuid),
// or anything a detector finds (int2 and int4: a sign and at most 10
// digits, too short for a card number, without the separators of an SSN
// or a phone number): detectors skip them (mask.Column.Fixed). int8 and
// numeric are scanned: a card number fits in them.
var fixedShape = map[uint32]bool{16: true, 21: true, 23: true, 1082: true, 1083: true, 1114: true, 1184: true, 1186: true, 1266: true, 2950: true}

// typeQuery follows a domain to its base type and reports the base's OID
// and category ('S': string types such as citext).
const typeQuery = `
WITH RECURSIVE t(oid, typtype, typbasetype, typcategory, depth) AS (
  SELECT oid, typtype, typbasetype, typcategory, 0 FROM pg_catalog.pg_type WHERE oid = $1
  UNION ALL
  SELECT p.oid, p.typtype, p.typbasetype, p.typcategory, t.depth + 1
  FROM pg_catalog.pg_type p JOIN t ON p.oid = t.typbasetype WHERE t.typtype = 'd' AND t.depth < 16)
SELECT oid::int8, typcategory::text FROM t ORDER BY depth DESC LIMIT 1`

// typeKind says how values of a type OID are masked. A type that cannot
// be looked up is not text (masked values become NULL).
func (c *resCatalog) typeKind(ctx context.Context, oid uint32) (textKind, error) {
	if k, ok := builtinKinds[oid]; ok {
		return k, nil
	}
	c.mu.Lock()
	k, hit := c.types[oid]
	c.mu.Unlock()
	if hit {
		return k, nil
	}
	var base int64
	var cat string
	err := c.q.QueryRow(ctx, typeQuery, oid).Scan(&base, &cat)
	switch {
	case err == pgx.ErrNoRows:
		k = kindOther
	case err != nil:
		return kindOther, err
	default:
		if bk, ok := builtinKinds[uint32(base)]; ok {
			k = bk
		} else if cat == "S" {
			k = kindText
		}
	}
	c.mu.Lock()
	putCached(c.types, oid, k)
	c.mu.Unlock()
	return k, nil
}

const colTypesQuery = `
SELECT a.attname, a.atttypid::int8
FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped`

// sourceKind is the kind of a table column named by schema, table and
// column (COPY rows carry no types); kindOther when unknown.
func (c *resCatalog) sourceKind(ctx context.Context, s mask.Source) (textKind, error) {
	key := [2]string{s.Schema, s.Table}
	c.mu.Lock()
	cols, hit := c.colTypes[key]
	c.mu.Unlock()
	if !hit {
		var err error
		if cols, err = c.readColTypes(ctx, s.Schema, s.Table); err != nil {
			return kindOther, err
		}
		c.mu.Lock()
		putCached(c.colTypes, key, cols)
		c.mu.Unlock()
	}
	return cols[s.Column], nil
}

func (c *resCatalog) readColTypes(ctx context.Context, schema, table string) (map[string]textKind, error) {
	type col struct {
		name string
		oid  int64
	}
	rows, err := c.q.Query(ctx, colTypesQuery, schema, table)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (col, error) {
		var x col
		return x, r.Scan(&x.name, &x.oid)
	})
	if err != nil {
		return nil, fmt.Errorf("reading the types of %s.%s: %w", schema, table, err)
	}
	// Types are looked up after the rows are read: a single connection
	// cannot run a query while another's rows are open.
	out := make(map[string]textKind, len(list))
	for _, x := range list {
		k, err := c.typeKind(ctx, uint32(x.oid))
		if err != nil {
			return nil, err
		}
		out[x.name] = k
	}
	return out, nil
}

const ancestorsByNameQuery = `
WITH RECURSIVE anc(oid, depth) AS (
  SELECT i.inhparent, 1 FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1 AND c.relname = $2
  UNION
  SELECT i.inhparent, anc.depth + 1 FROM pg_catalog.pg_inherits i JOIN anc ON i.inhrelid = anc.oid WHERE anc.depth < 32)
SELECT DISTINCT n.nspname, c.relname
FROM anc JOIN pg_catalog.pg_class c ON c.oid = anc.oid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace`

// expand adds, for each source that is a generated column, the columns
// it is computed from, and for each source in a partition or inheritance
// child, the same column of its ancestors, so a rule on the parent table
// (or on the column a generated one reads) covers a statement that names
// the child (or the generated column). A lookup error is returned with the
// sources unexpanded; the caller treats the column as unresolved.
func (c *resCatalog) expand(ctx context.Context, srcs []mask.Source) ([]mask.Source, error) {
	out, grown := srcs, false
	add := func(s mask.Source) {
		if !grown {
			out, grown = slices.Clone(srcs), true
		}
		out = append(out, s)
	}
	for _, s := range srcs {
		gen, err := c.generatedCols(ctx, s.Schema, s.Table)
		if err != nil {
			return srcs, err
		}
		for _, from := range gen[s.Column] {
			add(mask.Source{Schema: s.Schema, Table: s.Table, Column: from})
		}
	}
	own := out // the ancestors of each, generated columns' sources included
	for _, s := range own {
		anc, err := c.ancestors(ctx, s.Schema, s.Table)
		if err != nil {
			return srcs, err
		}
		for _, a := range anc {
			add(mask.Source{Schema: a[0], Table: a[1], Column: s.Column})
		}
	}
	return out, nil
}

func (c *resCatalog) ancestors(ctx context.Context, schema, table string) ([][2]string, error) {
	key := [2]string{schema, table}
	c.mu.Lock()
	anc, hit := c.anc[key]
	c.mu.Unlock()
	if hit {
		return anc, nil
	}
	rows, err := c.q.Query(ctx, ancestorsByNameQuery, schema, table)
	if err != nil {
		return nil, err
	}
	anc, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var a [2]string
		return a, r.Scan(&a[0], &a[1])
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	putCached(c.anc, key, anc)
	c.mu.Unlock()
	return anc, nil
}

// shapeQuery follows a domain to its base type and says how that type's
// binary values are built: typtype ('c' composite, 'e' enum, 'r' range,
// 'm' multirange, 'p' pseudo such as record), category ('A' array, 'S'
// string) and a range's or multirange's subtype.
const shapeQuery = `
WITH RECURSIVE t(oid, typtype, typbasetype, depth) AS (
  SELECT oid, typtype, typbasetype, 0 FROM pg_catalog.pg_type WHERE oid = $1
  UNION ALL
  SELECT p.oid, p.typtype, p.typbasetype, t.depth + 1
  FROM pg_catalog.pg_type p JOIN t ON p.oid = t.typbasetype WHERE t.typtype = 'd' AND t.depth < 16)
SELECT b.oid::int8, b.typtype::text, b.typcategory::text,
  coalesce((SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = b.oid OR r.rngmultitypid = b.oid LIMIT 1), 0)::int8
FROM (SELECT oid FROM t ORDER BY depth DESC LIMIT 1) x JOIN pg_catalog.pg_type b ON b.oid = x.oid`

// shape says how the binary values of a type that is not built in are
// decoded for the detectors; ok is false when they cannot be (an
// extension's own type, a lookup error): such values are masked whole.
func (c *resCatalog) shape(ctx context.Context, oid uint32) (typeShape, bool) {
	c.mu.Lock()
	sh, hit := c.shapes[oid]
	c.mu.Unlock()
	if hit {
		return sh, sh.kind != shapeUnknown
	}
	var base, sub int64
	var typtype, category string
	// A lookup error is cached as unknown too (its values are masked
	// whole): asking again for every row would stall the session while
	// the catalog is unreachable. The cache is made anew after CacheTTL.
	err := c.q.QueryRow(ctx, shapeQuery, oid).Scan(&base, &typtype, &category, &sub)
	if err == nil {
		sh = shapeFrom(uint32(base), typtype, category, uint32(sub))
	}
	c.mu.Lock()
	putCached(c.shapes, oid, sh)
	c.mu.Unlock()
	return sh, sh.kind != shapeUnknown
}

func shapeFrom(base uint32, typtype, category string, sub uint32) typeShape {
	if sh, ok := builtinShapes[base]; ok {
		return sh
	}
	switch {
	case typtype == "c" || base == 2249:
		return typeShape{kind: shapeRecord}
	case typtype == "r":
		return typeShape{kind: shapeRange, sub: sub}
	case typtype == "m":
		return typeShape{kind: shapeMultirange, sub: sub}
	case category == "A":
		return typeShape{kind: shapeArray}
	case typtype == "e" || category == "S":
		// An enum's binary value is its label; a string type's (citext)
		// is its text.
		return typeShape{kind: shapeText}
	}
	return typeShape{}
}
