package sqlkind

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// PostgresOptions configures a Postgres classifier. The zero value is the
// safe default.
type PostgresOptions struct {
	// NonStandardStrings is true when the session runs with
	// standard_conforming_strings off. A backslash then changes where
	// strings end, and the parser here reads them as standard, so any text
	// containing a backslash is Unknown.
	NonStandardStrings bool
	// CacheSize bounds the classification cache (entries, per key kind).
	// Zero means 10,000; negative disables caching.
	CacheSize int
	// AllowFunctions are further functions, written as in statements
	// ("public.safe_fn"), that count as reads without a catalog check. Only
	// list functions whose code you have read.
	AllowFunctions []string
}

// PostgresClassifier classifies PostgreSQL statement text with PostgreSQL's own parser
// (pg_query). It is safe for concurrent use.
type PostgresClassifier struct {
	nonStandard bool
	allowFuncs  map[string]bool
	exact       *lru[*analysis] // keyed on the exact text
	shapes      *lru[*analysis] // keyed on the literal-insensitive key
}

// NewPostgres returns a classifier with its own cache.
func NewPostgres(opts PostgresOptions) *PostgresClassifier {
	size := opts.CacheSize
	if size == 0 {
		size = 10000
	}
	return &PostgresClassifier{
		nonStandard: opts.NonStandardStrings,
		allowFuncs:  setOf(opts.AllowFunctions...),
		exact:       newLRU[*analysis](size),
		shapes:      newLRU[*analysis](size),
	}
}

// analysis is what the cache keeps for one text.
type analysis struct {
	c     Classification
	stmts []Statement // shared by every caller: read only
	// shapeable is true when the classification does not depend on any
	// literal's value, so texts differing only in literals may share it.
	shapeable bool
}

// Classify returns the kind of text, the relations it touches and the
// functions it calls. EXECUTE of a prepared statement is Unknown (see
// ClassifyWithPrepared), and a statement calling functions that are not on
// the built-in allow-list is Unknown until Resolve checks them.
func (p *PostgresClassifier) Classify(text string) Classification {
	return p.analyze(text).c
}

// Statements returns each statement of text with what the engine tracks per
// connection (PREPARE, EXECUTE, DEALLOCATE, SET). Nil when text does not
// parse (Classify says why).
func (p *PostgresClassifier) Statements(text string) []Statement {
	return slices.Clone(p.Analyze(text).Statements())
}

// ClassifyWithPrepared is Classify with EXECUTE name resolved: lookup returns
// the classification of the statement the session prepared under that name
// (as Classify, or Resolve, gave it at PREPARE). A name lookup does not know
// stays Unknown.
func (p *PostgresClassifier) ClassifyWithPrepared(text string, lookup func(name string) (Classification, bool)) Classification {
	return p.Analyze(text).ClassifyWithPrepared(lookup)
}

// Analysis is one text's analysis, for an engine that needs both its
// statements and its classification: Analyze looks the text up (or parses
// it) once for both.
type Analysis struct{ a *analysis }

// Analyze analyzes text; its methods answer as Statements and
// ClassifyWithPrepared of the same text.
func (p *PostgresClassifier) Analyze(text string) Analysis { return Analysis{p.analyze(text)} }

// Statements is PostgresClassifier.Statements of the analyzed text, except
// that the slice is the cache's own, shared with every other caller of the
// same text: it must not be modified.
func (an Analysis) Statements() []Statement {
	if len(an.a.stmts) == 0 {
		return nil
	}
	return an.a.stmts[:len(an.a.stmts):len(an.a.stmts)]
}

// ClassifyWithPrepared is PostgresClassifier.ClassifyWithPrepared of the
// analyzed text.
func (an Analysis) ClassifyWithPrepared(lookup func(name string) (Classification, bool)) Classification {
	a := an.a
	if lookup == nil || !a.hasExecute() {
		return a.c
	}
	parts := make([]Classification, len(a.stmts))
	for i, s := range a.stmts {
		parts[i] = s.Classification
		if s.Execute == "" {
			continue
		}
		if c, ok := lookup(s.Execute); ok {
			parts[i] = withStatements(c, 1)
		}
	}
	return combine(parts)
}

func (a *analysis) hasExecute() bool {
	for _, s := range a.stmts {
		if s.Execute != "" {
			return true
		}
	}
	return false
}

func withStatements(c Classification, n int) Classification {
	c.Statements = n
	return c
}

// maxCachedText keeps huge texts (bulk INSERTs) out of the cache: they are
// rarely repeated and would hold memory.
const maxCachedText = 16 << 10

func (p *PostgresClassifier) analyze(text string) *analysis {
	if len(text) > maxCachedText {
		return p.parse(text)
	}
	if a, ok := p.exact.get(text); ok {
		return a
	}
	key, keyed := literalKey(text, p.nonStandard)
	if keyed {
		if a, ok := p.shapes.get(key); ok {
			// Not kept under the exact text too: texts that differ only in
			// literals (a simple-protocol client's) rarely repeat, and
			// would only push out the exact entries that do.
			return a
		}
	}
	a := p.parse(text)
	p.exact.put(text, a)
	if keyed && a.shapeable {
		p.shapes.put(key, a)
	}
	return a
}

// parse classifies text without the cache.
func (p *PostgresClassifier) parse(text string) *analysis {
	if p.nonStandard && strings.Contains(text, `\`) {
		return unknown("standard_conforming_strings is off and the text contains a backslash: " +
			"the gateway cannot be sure where its strings end; turn standard_conforming_strings on")
	}
	if strings.IndexByte(text, 0) >= 0 {
		// The parser reads a C string and would stop at the NUL; what the
		// server sees depends on how the text reached it.
		return unknown("the text contains a NUL byte, which PostgreSQL statements cannot contain")
	}
	if tooDeep(text, p.nonStandard) {
		return unknown(fmt.Sprintf("the text is long and either nests more than %d levels deep or cannot be scanned "+
			"to rule that out; the gateway does not parse it (split it into smaller statements)", maxNesting))
	}
	tree, err := pg.Parse(text)
	if err != nil {
		return unknown(fmt.Sprintf("PostgreSQL's parser rejects the text: %v", err))
	}
	if len(tree.Stmts) == 0 {
		return &analysis{c: Classification{Kind: Read, pending: Read, Reason: "empty statement"}, shapeable: true}
	}
	a := &analysis{shapeable: true, stmts: make([]Statement, len(tree.Stmts))}
	parts := make([]Classification, len(tree.Stmts))
	for i, raw := range tree.Stmts {
		r := p.classifyStmt(raw)
		a.stmts[i] = r.Statement
		a.shapeable = a.shapeable && !r.literalSensitive
		parts[i] = r.Classification
	}
	a.c = combine(parts)
	return a
}

func unknown(reason string) *analysis {
	return &analysis{c: Classification{Kind: Unknown, Reason: reason}}
}

// combine merges statements' classifications: the most dangerous kind wins,
// with its reason; names are merged.
func combine(parts []Classification) Classification {
	if len(parts) == 1 {
		return parts[0]
	}
	var c Classification
	c.Kind, c.pending = Read, Read
	for i, s := range parts {
		if i == 0 || Max(c.Kind, s.Kind) != c.Kind {
			c.Reason = s.Reason
		} else if c.Reason == "" && s.Kind == c.Kind {
			c.Reason = s.Reason
		}
		c.Kind = Max(c.Kind, s.Kind)
		c.pending = Max(c.pending, s.pending)
		c.CopyIn = c.CopyIn || s.CopyIn
		c.Variables = append(c.Variables, s.Variables...)
		c.Statements += s.Statements
		c.Objects = append(c.Objects, s.Objects...)
		c.Functions = append(c.Functions, s.Functions...)
		c.Operators = append(c.Operators, s.Operators...)
		c.Types = append(c.Types, s.Types...)
		c.attrs = append(c.attrs, s.attrs...)
	}
	c.Objects = sortedUnique(c.Objects)
	c.Functions = sortedUnique(c.Functions)
	c.Operators = sortedUnique(c.Operators)
	c.Types = sortedUnique(c.Types)
	c.Variables = sortedUnique(c.Variables)
	c.attrs = sortedUnique(c.attrs)
	return c
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	sort.Strings(s)
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}
