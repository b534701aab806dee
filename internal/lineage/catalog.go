package lineage

import "context"

// Relation kinds as pg_class.relkind spells them.
const (
	KindTable       byte = 'r'
	KindPartitioned byte = 'p'
	KindView        byte = 'v'
	KindMatView     byte = 'm'
	KindForeign     byte = 'f'
	KindSequence    byte = 'S'
)

// Catalog answers what the analyzer needs to know about the upstream
// database. Implementations must be safe for the caller's use (PGCatalog
// caches and is safe for concurrent use when built on a pool).
type Catalog interface {
	// Resolve finds the relation a name in a statement refers to, through
	// the session's search_path when the name is unqualified. name is
	// "table" or "schema.table", each part double-quoted when
	// PostgreSQL's quote_ident would quote it. ok is false when there is
	// no such relation.
	Resolve(ctx context.Context, name string) (schema, table string, kind byte, ok bool, err error)
	// Columns lists a relation's live columns in attribute order.
	Columns(ctx context.Context, schema, table string) ([]string, error)
	// ViewDefinition returns a view's (or materialized view's) SELECT
	// text with every name schema-qualified; ok is false when there is no
	// such view.
	ViewDefinition(ctx context.Context, schema, view string) (def string, ok bool, err error)
}

// FunctionCatalog is an optional extension of Catalog. When a Catalog
// implements it, a function the built-in list does not know is asked
// about: argsOnly is true when every function of that name is a built-in
// whose result is derived only from its arguments (it reads no table by
// itself). Without it, unknown functions are unresolved.
type FunctionCatalog interface {
	ArgsOnly(ctx context.Context, name string) (argsOnly bool, err error)
}
