package mysql

import (
	"strconv"

	"github.com/countersign/countersign/internal/sqlkind"
)

// lineageCache keeps a connection's recent statement lineages
// (mylineage.go), so that a statement run again, or again with other
// integer literals (a point select with a new id each time), is not parsed
// again for its masking. A lineage is a function of the text and the
// current schema only (which relations are views is looked up for each
// result, not kept in it), and an integer literal that the classifier's
// literal key replaces can name no column, table or alias: texts of one
// key have the same lineage. Lineages hold parsed statements, which
// visitors write to as they walk them, so the cache is per connection:
// only the connection's own goroutine uses it.
type lineageCache struct {
	m map[string]*lineage
}

// lineageCacheSize bounds the lineages a connection keeps.
const lineageCacheSize = 32

// lineageAware is implemented by a filter that analyzes statement
// lineages; the engine hands it the connection's cache.
type lineageAware interface {
	setLineages(c *lineageCache)
}

// analyze is analyzeLineage(text, schema), from the cache when it can be.
func (lc *lineageCache) analyze(text, schema string) *lineage {
	k := lineageKey(text, schema)
	if l, ok := lc.m[k]; ok {
		return l
	}
	l := analyzeLineage(text, schema)
	if lc.m == nil || len(lc.m) >= lineageCacheSize {
		lc.m = make(map[string]*lineage, lineageCacheSize)
	}
	lc.m[k] = l
	return l
}

// lineageKey is the cache key: the schema, length-prefixed, then the
// text's literal key, or the exact text when it has none (marked apart,
// so that no text can be taken for a key).
func lineageKey(text, schema string) string {
	b := strconv.AppendInt(nil, int64(len(schema)), 10)
	b = append(b, ':')
	b = append(b, schema...)
	if key, ok := sqlkind.MySQLLiteralKey(text); ok {
		return string(append(append(b, 'k'), key...))
	}
	return string(append(append(b, 't'), text...))
}
