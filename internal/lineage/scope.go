package lineage

import pg "github.com/pganalyze/pg_query_go/v6"

// column is one column of a relation or a query result.
type column struct {
	name string
	l    lin
	// wild stands for an unknown number of columns of unknown names (a
	// function's record result): a name not found elsewhere in the
	// relation resolves to it.
	wild bool
}

// rel is one item of a FROM clause as the query's names see it.
type rel struct {
	name   string // alias, or the relation's own name
	schema string // set for an unaliased table, for schema.table.column
	cols   []column
}

func (r *rel) hasWild() bool {
	for _, c := range r.cols {
		if c.wild {
			return true
		}
	}
	return false
}

func (r *rel) whole() lin { return unionAll(r.cols) }

// lookup finds a column by name. A relation with a wild column may hold
// any name.
func (r *rel) lookup(name string) (lin, bool) {
	var l lin
	found := false
	for _, c := range r.cols {
		if !c.wild && c.name == name {
			l, found = l.union(c.l), true
		}
	}
	if found {
		return l, true
	}
	for _, c := range r.cols {
		if c.wild {
			return c.l, true
		}
	}
	return lin{}, false
}

// scope is one query level's FROM items plus the levels it is nested in
// (a correlated subquery sees its outer query's columns).
type scope struct {
	rels   []*rel
	parent *scope
	ctes   *cte
}

// cte is a WITH query in scope, in a linked list that shadows outward.
type cte struct {
	name string
	cols []column
	next *cte
}

func (s *scope) child() *scope {
	return &scope{parent: s, ctes: s.ctes}
}

func (s *scope) cte(name string) *cte {
	for c := s.ctes; c != nil; c = c.next {
		if c.name == name {
			return c
		}
	}
	return nil
}

// columnRef resolves a column reference. PostgreSQL tries a single name as
// a column of every FROM item of the innermost level, then as a whole-row
// reference to an item, then the same one level out; where it could be
// both, lineage takes both.
func (a *analyzer) columnRef(sc *scope, fields []*pg.Node) lin {
	names := make([]string, 0, len(fields))
	star := false
	for i, f := range fields {
		switch {
		case f.GetString_() != nil:
			names = append(names, f.GetString_().Sval)
		case f.GetAStar() != nil && i == len(fields)-1:
			star = true
		default:
			return unresolved
		}
	}
	switch {
	case star && len(names) == 0:
		var l lin
		for _, r := range sc.rels {
			l = l.union(r.whole())
		}
		return l
	case star:
		r := findRel(sc, names)
		if r == nil {
			return unresolved
		}
		return r.whole()
	case len(names) == 1:
		return a.bareName(sc, names[0])
	}
	r := findRel(sc, names[:len(names)-1])
	if r == nil {
		return unresolved
	}
	if l, ok := r.lookup(names[len(names)-1]); ok {
		return l
	}
	// t.f where t has no column f is f(t), a function call on the row.
	return unresolved
}

func (a *analyzer) bareName(sc *scope, name string) lin {
	for s := sc; s != nil; s = s.parent {
		var l lin
		found := false
		for _, r := range s.rels {
			if c, ok := r.lookup(name); ok {
				l, found = l.union(c), true
			}
			if r.name == name {
				l, found = l.union(r.whole()), true
			}
		}
		if found {
			return l
		}
	}
	return unresolved
}

// findRel finds the FROM item a qualifier names: "t", "s.t" or "db.s.t".
func findRel(sc *scope, q []string) *rel {
	if len(q) == 0 || len(q) > 3 {
		return nil
	}
	name := q[len(q)-1]
	schema := ""
	if len(q) >= 2 {
		schema = q[len(q)-2]
	}
	for s := sc; s != nil; s = s.parent {
		for _, r := range s.rels {
			if r.name == name && (schema == "" || schema == r.schema) {
				return r
			}
		}
	}
	return nil
}

// rename applies an alias's column names to the first columns.
func rename(cols []column, alias *pg.Alias) []column {
	if alias == nil || len(alias.Colnames) == 0 {
		return cols
	}
	out := append([]column(nil), cols...)
	for i, n := range alias.Colnames {
		if i >= len(out) || out[i].wild {
			break
		}
		out[i].name = n.GetString_().GetSval()
	}
	return out
}
