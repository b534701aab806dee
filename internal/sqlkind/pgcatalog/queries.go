package pgcatalog

import (
	"context"
	"fmt"

	"github.com/countersign/countersign/internal/sqlkind"
)

// Every query takes the names as two arrays (schema, name) and matches an
// empty schema to every schema.

const funcsSQL = `
SELECT q.s, q.n, bool_and(ns.nspname = 'pg_catalog'),
       CASE WHEN bool_or(p.provolatile = 'v') THEN 'v'
            WHEN bool_or(p.provolatile = 's') THEN 's' ELSE 'i' END
FROM unnest($1::text[], $2::text[]) AS q(s, n)
JOIN pg_catalog.pg_proc p ON p.proname = q.n
JOIN pg_catalog.pg_namespace ns ON ns.oid = p.pronamespace
WHERE q.s = '' OR ns.nspname = q.s
GROUP BY q.s, q.n`

// An operator is as volatile as the function that implements it.
const opsSQL = `
SELECT q.s, q.n, bool_and(ns.nspname = 'pg_catalog' AND pns.nspname = 'pg_catalog'),
       CASE WHEN bool_or(p.provolatile = 'v') THEN 'v'
            WHEN bool_or(p.provolatile = 's') THEN 's' ELSE 'i' END
FROM unnest($1::text[], $2::text[]) AS q(s, n)
JOIN pg_catalog.pg_operator o ON o.oprname = q.n
JOIN pg_catalog.pg_namespace ns ON ns.oid = o.oprnamespace
JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
JOIN pg_catalog.pg_namespace pns ON pns.oid = p.pronamespace
WHERE q.s = '' OR ns.nspname = q.s
GROUP BY q.s, q.n`

// A cast to a type is safe when every type of that name is built in (or an
// enum or a table's row type, whose input functions are built in) and no
// cast into it is implemented by a function outside pg_catalog.
const typesSQL = `
SELECT q.s, q.n, bool_and(
         (ns.nspname IN ('pg_catalog', 'information_schema') OR t.typtype IN ('e', 'c'))
         AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_cast c
           JOIN pg_catalog.pg_proc cp ON cp.oid = c.castfunc
           JOIN pg_catalog.pg_namespace cn ON cn.oid = cp.pronamespace
           WHERE c.casttarget = t.oid AND cn.nspname <> 'pg_catalog'))
FROM unnest($1::text[], $2::text[]) AS q(s, n)
JOIN pg_catalog.pg_type t ON t.typname = q.n
JOIN pg_catalog.pg_namespace ns ON ns.oid = t.typnamespace
WHERE q.s = '' OR ns.nspname = q.s
GROUP BY q.s, q.n`

// Views give their definition; tables with row security give their
// policies' expressions.
const relsSQL = `
SELECT q.s, q.n,
       CASE WHEN c.relkind = 'v' THEN pg_catalog.pg_get_viewdef(c.oid) END,
       ARRAY(SELECT pg_catalog.pg_get_expr(e.x, c.oid)
             FROM pg_catalog.pg_policy pol,
                  LATERAL (VALUES (pol.polqual), (pol.polwithcheck)) AS e(x)
             WHERE pol.polrelid = c.oid AND c.relrowsecurity AND e.x IS NOT NULL)
FROM unnest($1::text[], $2::text[]) AS q(s, n)
JOIN pg_catalog.pg_class c ON c.relname = q.n
JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
WHERE q.s = '' OR ns.nspname = q.s`

// Functions implements sqlkind.Catalog.
func (c *Catalog) Functions(ctx context.Context, names []string) (map[string]sqlkind.FuncInfo, error) {
	return cached[sqlkind.FuncInfo](ctx, c, &c.funcs, names, c.funcQuery(funcsSQL))
}

// Operators implements sqlkind.Catalog.
func (c *Catalog) Operators(ctx context.Context, names []string) (map[string]sqlkind.FuncInfo, error) {
	return cached[sqlkind.FuncInfo](ctx, c, &c.ops, names, c.funcQuery(opsSQL))
}

func (c *Catalog) funcQuery(sql string) func(context.Context, []string, []string) (map[string]any, error) {
	return func(ctx context.Context, schemas, bases []string) (map[string]any, error) {
		rows, err := c.q.Query(ctx, sql, schemas, bases)
		if err != nil {
			return nil, fmt.Errorf("querying the upstream catalog: %w", err)
		}
		defer rows.Close()
		out := map[string]any{}
		for rows.Next() {
			var s, n, vol string
			var builtin bool
			if err := rows.Scan(&s, &n, &builtin, &vol); err != nil {
				return nil, fmt.Errorf("reading the upstream catalog: %w", err)
			}
			out[joinName(s, n)] = sqlkind.FuncInfo{Volatility: sqlkind.Volatility(vol[0]), BuiltIn: builtin}
		}
		return out, rows.Err()
	}
}

// Types implements sqlkind.Catalog.
func (c *Catalog) Types(ctx context.Context, names []string) (map[string]bool, error) {
	return cached[bool](ctx, c, &c.types, names, func(ctx context.Context, schemas, bases []string) (map[string]any, error) {
		rows, err := c.q.Query(ctx, typesSQL, schemas, bases)
		if err != nil {
			return nil, fmt.Errorf("querying the upstream catalog for types: %w", err)
		}
		defer rows.Close()
		out := map[string]any{}
		for rows.Next() {
			var s, n string
			var safe bool
			if err := rows.Scan(&s, &n, &safe); err != nil {
				return nil, fmt.Errorf("reading the upstream catalog: %w", err)
			}
			out[joinName(s, n)] = safe
		}
		return out, rows.Err()
	})
}

// Relations implements sqlkind.Catalog.
func (c *Catalog) Relations(ctx context.Context, names []string) (map[string]sqlkind.RelationInfo, error) {
	return cached[sqlkind.RelationInfo](ctx, c, &c.rels, names, func(ctx context.Context, schemas, bases []string) (map[string]any, error) {
		rows, err := c.q.Query(ctx, relsSQL, schemas, bases)
		if err != nil {
			return nil, fmt.Errorf("querying the upstream catalog for relations: %w", err)
		}
		defer rows.Close()
		acc := map[string]sqlkind.RelationInfo{}
		for rows.Next() {
			var s, n string
			var view *string
			var policies []string
			if err := rows.Scan(&s, &n, &view, &policies); err != nil {
				return nil, fmt.Errorf("reading the upstream catalog: %w", err)
			}
			k := joinName(s, n)
			info := acc[k]
			if view != nil {
				info.Views = append(info.Views, *view)
			}
			info.Policies = append(info.Policies, policies...)
			acc[k] = info
		}
		out := make(map[string]any, len(acc))
		for k, v := range acc {
			out[k] = v
		}
		return out, rows.Err()
	})
}
