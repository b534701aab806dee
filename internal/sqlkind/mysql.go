package sqlkind

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	// The parser needs a value-expression implementation; this is TiDB's
	// small one without the TiDB type system (go-mysql uses it the same way).
	_ "github.com/pingcap/tidb/pkg/parser/test_driver"
)

// MySQLOptions configures a MySQL classifier. The zero value is the safe
// default.
type MySQLOptions struct {
	// CacheSize bounds the classification cache (entries). Zero means
	// 10,000; negative disables caching.
	CacheSize int
	// AllowFunctions are further functions, lower case and written as in
	// statements ("app.safe_fn"), that count as reads. Only list functions
	// whose code you have read.
	AllowFunctions []string
}

// MySQLClassifier classifies MySQL and MariaDB statement text with TiDB's
// MySQL grammar (github.com/pingcap/tidb/pkg/parser), after the gateway's
// own comment scan (see mysqlVariants). It is safe for concurrent use.
type MySQLClassifier struct {
	allowFuncs map[string]bool
	cache      *lru[*myAnalysis] // by exact text
	shapes     *lru[*myAnalysis] // by mysqlLiteralKey, shapeable analyses only
	parsers    sync.Pool
}

// MySQLStatement is one statement of a MySQL text with what the engine
// tracks per connection. Treat every field as read-only: it is shared
// through the cache.
type MySQLStatement struct {
	Classification
	// Use is the schema USE switches to, "" otherwise.
	Use string
	// Settings are the session variables a SET changes.
	Settings []MySQLSetting
	// LoadLocal is LOAD DATA LOCAL INFILE: the server will ask the client
	// for a file.
	LoadLocal bool
	// LoadFile is the file a LOAD DATA LOCAL names, as written: the only
	// file the server may ask the client for.
	LoadFile string
	// Schemas are the schemas the statement names explicitly (qualified
	// table, column and function names, USE, CREATE/ALTER/DROP DATABASE,
	// SHOW ... FROM db), as written; unqualified names use the current
	// schema. The engine enforces a resource's allowed schemas on them.
	Schemas []string
	// Prepare is SQL-level PREPARE name FROM ...; nil otherwise.
	Prepare *MySQLPrepare
	// Execute names the statement SQL-level EXECUTE runs; "" otherwise.
	// ExecuteUsing is set when it passes user variables (EXECUTE s USING @a).
	Execute      string
	ExecuteUsing bool
	// Deallocate names the statement DEALLOCATE PREPARE drops; "" otherwise.
	Deallocate string
}

// MySQLPrepare is a SQL-level PREPARE. Name is lower case (statement names
// are case-insensitive). Text is the statement when prepared from a string
// literal; FromVariable is set when it is prepared from a user variable,
// whose value the gateway does not know.
type MySQLPrepare struct {
	Name         string
	Text         string
	FromVariable bool
}

// MySQLSetting is one session variable a SET changes. SET NAMES and SET
// CHARACTER SET appear as character_set_client.
type MySQLSetting struct {
	Name  string // lower case
	Value string // as written when a literal; "" for an expression
	// Default is SET x = DEFAULT.
	Default bool
	// Tokenizing is set when the value would make the server read
	// statement text differently from the gateway, or may: an sql_mode
	// with ANSI_QUOTES, NO_BACKSLASH_ESCAPES and the like, a character set
	// other than UTF-8, or any value not written as a literal (an
	// expression, a parameter). Invariant 8: the engine refuses such a
	// SET outright; no approval can make the gateway read the session's
	// later statements right.
	Tokenizing bool
}

// NewMySQL returns a classifier with its own cache.
func NewMySQL(opts MySQLOptions) *MySQLClassifier {
	size := opts.CacheSize
	if size == 0 {
		size = 10000
	}
	m := &MySQLClassifier{allowFuncs: setOf(opts.AllowFunctions...), cache: newLRU[*myAnalysis](size),
		shapes: newLRU[*myAnalysis](size)}
	m.parsers.New = func() any { return parser.New() }
	return m
}

type myAnalysis struct {
	c     Classification
	stmts []MySQLStatement
}

// Classify returns the kind of text and the tables it touches. Functions
// not on the built-in allow-list make it Unknown (MySQL has no catalog
// flag the gateway could trust for a stored function).
func (m *MySQLClassifier) Classify(text string) Classification {
	return m.analyze(text).c
}

// Statements returns each statement of text with what the engine tracks
// per connection; nil when text cannot be read (Classify says why).
func (m *MySQLClassifier) Statements(text string) []MySQLStatement {
	return m.analyze(text).stmts
}

func (m *MySQLClassifier) analyze(text string) *myAnalysis {
	if len(text) > maxCachedText {
		return m.parse(text)
	}
	if a, ok := m.cache.get(text); ok {
		return a
	}
	// Shapes live in their own cache: an exact text can never be looked
	// up as a key, nor a key as a text.
	key, keyed := mysqlLiteralKey(text)
	if keyed {
		if a, ok := m.shapes.get(key); ok {
			m.cache.put(text, a)
			return a
		}
	}
	a := m.parse(text)
	m.cache.put(text, a)
	if keyed && mysqlShapeable(a) {
		m.shapes.put(key, a)
	}
	return a
}

func myUnknown(reason string) *myAnalysis {
	return &myAnalysis{c: Classification{Kind: Unknown, Reason: reason}}
}

// parse classifies text without the cache: every variant the server could
// run (executable comments) is classified, and the most dangerous wins.
func (m *MySQLClassifier) parse(text string) *myAnalysis {
	if !utf8.ValidString(text) {
		return myUnknown("the text is not valid UTF-8; the gateway reads statements as utf8mb4")
	}
	if strings.IndexByte(text, 0) >= 0 {
		return myUnknown("the text contains a NUL byte")
	}
	variants, why := mysqlVariants(text)
	if why != "" {
		return myUnknown(why)
	}
	var out *myAnalysis
	anyTokenizing := false
	for _, v := range variants {
		a := m.parseOne(v)
		anyTokenizing = anyTokenizing || tokenizing(a.stmts)
		if out == nil {
			out = a
			continue
		}
		if a.c.Kind == Unknown && a.stmts == nil {
			return a
		}
		if !sameState(out.stmts, a.stmts) {
			return myUnknown("executable comments change the session's schema or prepared statements (or which statement changes them) depending on the server's version")
		}
		// The last variant has every executable comment opened: its
		// statements are the engine's view of the text.
		out = &myAnalysis{c: combine([]Classification{out.c, a.c}), stmts: a.stmts}
		out.c.Statements = a.c.Statements
	}
	if anyTokenizing && !tokenizing(out.stmts) {
		// The engine refuses a Tokenizing setting in the statements it
		// gets, which are the last variant's; one only another variant
		// has leaves nothing for it to see.
		return myUnknown("executable comments change how the session reads text depending on the server's version")
	}
	return out
}

// sameState reports whether two variants leave the engine the same state
// to follow: the same USE, PREPARE, EXECUTE and DEALLOCATE, each at the
// same statement index. The engine applies the last variant's statements,
// all of them when the text succeeded and the first that answered when it
// failed: a statement only one variant has would make it apply a PREPARE
// or USE the server never ran, or skip one it did. Settings may differ: an unsafe one is Unknown in
// whichever variant has it, and a safe one changes nothing the gateway
// reads. A LOAD DATA LOCAL only one variant has is fine too: the engine
// passes the server's file request on only for a file some statement
// names, and a server that skipped the statement asks for none.
func sameState(a, b []MySQLStatement) bool {
	return trackedState(a) == trackedState(b)
}

// trackedState renders what the engine follows of stmts, with indexes.
func trackedState(stmts []MySQLStatement) string {
	var b strings.Builder
	for i, s := range stmts {
		if s.Use == "" && s.Prepare == nil && s.Execute == "" && s.Deallocate == "" {
			continue
		}
		fmt.Fprintf(&b, "%d\x00%q\x00%q\x00%v\x00%q\x00%q\x00", i, s.Use, s.Execute, s.ExecuteUsing,
			s.Deallocate, prepareState(s.Prepare))
	}
	return b.String()
}

func prepareState(p *MySQLPrepare) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%q %q %v", p.Name, p.Text, p.FromVariable)
}

// tokenizing reports whether any statement changes how text is read.

func tokenizing(stmts []MySQLStatement) bool {
	for _, s := range stmts {
		for _, set := range s.Settings {
			if set.Tokenizing {
				return true
			}
		}
	}
	return false
}

// parseOne classifies one comment-free variant.
func (m *MySQLClassifier) parseOne(text string) (a *myAnalysis) {
	defer func() {
		if r := recover(); r != nil {
			// The parser is third-party code: a panic on odd input fails
			// closed instead of taking the session down.
			a = myUnknown(fmt.Sprintf("the MySQL parser failed on the text: %v", r))
		}
	}()
	if why := mysqlStoredLookalike(text); why != "" {
		return myUnknown(why) // mysqlcalls.go
	}
	p := m.parsers.Get().(*parser.Parser)
	stmts, _, err := p.Parse(text, "", "")
	if err != nil {
		if alt := parseAlterView(p, text); alt != nil {
			stmts, err = alt, nil // mysqlview.go
		}
	}
	m.parsers.Put(p)
	if err != nil {
		return myUnknown(fmt.Sprintf("the MySQL parser rejects the text (statements it does not know, such as HANDLER or MariaDB-only syntax, count as unknown): %v", err))
	}
	if len(stmts) == 0 {
		return &myAnalysis{c: Classification{Kind: Read, Reason: "empty statement"}}
	}
	a = &myAnalysis{stmts: make([]MySQLStatement, len(stmts))}
	parts := make([]Classification, len(stmts))
	for i, s := range stmts {
		a.stmts[i] = m.classifyStmt(s)
		parts[i] = a.stmts[i].Classification
	}
	a.c = combine(parts)
	return a
}

func (m *MySQLClassifier) classifyStmt(s ast.StmtNode) MySQLStatement {
	var r MySQLStatement
	var w myWalk
	r.Kind, r.Reason = m.stmtKind(s, &r, &w)
	if w.unknown != "" {
		r.Kind, r.Reason = Unknown, w.unknown
	} else if w.writes && r.Kind == Read {
		r.Kind, r.Reason = Write, "SELECT ... FOR UPDATE / LOCK IN SHARE MODE takes row locks"
	} else if w.setsSession && r.Kind == Read {
		r.Kind, r.Reason = Write, "LAST_INSERT_ID(expr) sets the session's last insert id, which later statements read"
	}
	r.Statements = 1
	r.Schemas = sortedUnique(append(statementSchemas(s), r.Schemas...))
	r.Objects = sortedUnique(w.objects)
	r.Functions = sortedUnique(w.functions)
	r.Variables = sortedUnique(w.vars)
	m.settleFunctions(&r.Classification)
	return r
}

// settleFunctions: a function that writes makes the statement a write; one
// that reaches outside the database, or that is not a known built-in,
// makes it Unknown.
func (m *MySQLClassifier) settleFunctions(c *Classification) {
	if c.Kind == Unknown {
		return
	}
	var unresolved []string
	for _, f := range c.Functions {
		switch {
		case m.allowFuncs[f]:
		case mysqlUnknownFuncs[f] != "":
			c.Kind, c.Reason = Unknown, mysqlUnknownFuncs[f]
			return
		case mysqlWriteFuncs[f]:
			if c.Kind == Read {
				c.Reason = fmt.Sprintf("calls %s(), which changes state", f)
			}
			c.Kind = Max(c.Kind, Write)
		case mysqlReadFuncs[f]:
		default:
			unresolved = append(unresolved, f+"()")
		}
	}
	if len(unresolved) > 0 {
		c.Kind = Unknown
		c.Reason = "calls " + strings.Join(unresolved, ", ") +
			", which is not a built-in function the gateway knows to be harmless (stored functions may do anything)"
	}
}
