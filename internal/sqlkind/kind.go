package sqlkind

import "fmt"

// Kind is what an operation may do. The zero value is Unknown, the most
// dangerous kind, so a forgotten classification fails closed.
type Kind int

const (
	Unknown Kind = iota
	Read
	Write
	Schema
	Privilege
	Admin
)

var kindNames = [...]string{
	Unknown:   "unknown",
	Read:      "read",
	Write:     "write",
	Schema:    "schema",
	Privilege: "privilege",
	Admin:     "admin",
}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k]
}

// ParseKind maps a kind's name back to the Kind.
func ParseKind(s string) (Kind, bool) {
	for k, n := range kindNames {
		if n == s {
			return Kind(k), true
		}
	}
	return Unknown, false
}

// rank orders kinds by danger: read < write < schema < privilege < admin < unknown.
func (k Kind) rank() int {
	switch k {
	case Read:
		return 0
	case Write:
		return 1
	case Schema:
		return 2
	case Privilege:
		return 3
	case Admin:
		return 4
	default:
		return 5
	}
}

// Max returns the more dangerous of two kinds; a multi-statement operation
// takes its most dangerous statement's kind.
func Max(a, b Kind) Kind {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Dialect names the SQL grammar an operation was written in.
type Dialect string

const (
	Postgres Dialect = "postgres"
	MySQL    Dialect = "mysql"
)

// Classification is what the classifier found out about one operation's text.
// A Classification is shared between callers through the cache: treat it as
// read-only.
type Classification struct {
	Kind Kind
	// Objects are the relations the statement touches, schema-qualified when
	// the text qualifies them ("public.users"), else as written ("users").
	Objects []string
	// Statements is the number of statements in the text.
	Statements int
	// Reason says why the kind was chosen when it is not obvious (why a
	// statement is unknown, which function made a SELECT a write).
	Reason string
	// Functions lists the functions the statement calls, lower-cased and
	// schema-qualified where written, for the catalog check of reads.
	Functions []string
	// Operators lists the operators the statement names explicitly, as the
	// parser reads them ("=", "pg_catalog.+", "myschema.==="), for the
	// catalog check of reads.
	Operators []string
	// Types lists the types the statement casts to ("pg_catalog.int4",
	// "regclass"), for the catalog check of reads.
	Types []string
	// CopyIn is set when the text has a COPY ... FROM STDIN (PostgreSQL)
	// or a LOAD DATA LOCAL INFILE (MySQL): the rows it writes arrive after
	// the decision, so no review of the text can cover them (a write grant
	// can).
	CopyIn bool
	// Variables are the MySQL user variables the statement reads (@x),
	// lower-cased: their values decide what it does, so an engine binds
	// them into the operation (guard.State.VariableValues).
	Variables []string

	// pending is the kind the text has once every function, operator, type
	// and view it uses resolves to something safe (see PostgresClassifier.Resolve).
	// Unknown when resolution cannot settle it.
	pending Kind
	// attrs are the last names of qualified column references ("t.x" gives
	// "x"): PostgreSQL reads t.f as f(t) when t has no column f, so each one
	// may be a function call.
	attrs []string
}
