package pgcatalog

import (
	"context"
	"fmt"

	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5"
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
// enum, or a row type whose columns are all of built-in types or enums:
// record_in runs each column's input, and a domain column's CHECK may call
// user code) and no cast into it is implemented by a function outside
// pg_catalog.
const typesSQL = `
SELECT q.s, q.n, bool_and(
         (ns.nspname IN ('pg_catalog', 'information_schema') OR t.typtype = 'e'
          OR (t.typtype = 'c' AND NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_attribute a
            JOIN pg_catalog.pg_type at ON at.oid = a.atttypid
            JOIN pg_catalog.pg_namespace an ON an.oid = at.typnamespace
            WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
              AND at.typtype <> 'e'
              AND (an.nspname NOT IN ('pg_catalog', 'information_schema') OR at.typtype = 'c'))))
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

// Casts PostgreSQL applies without the statement naming them, that run
// user code: implicit casts, and casts of any context into json or jsonb
// (to_json, row_to_json, json_agg, jsonb_build_object and the rest call a
// non-built-in type's cast to json for its values). User code is a
// conversion function outside pg_catalog, or an I/O conversion into a type
// outside it (its input may be a row type with domain columns).
// Binary-coercible casts run nothing, and
// an extension's own functions and types are installed code (CREATE and
// ALTER EXTENSION are admin operations), so casts made of them are not
// counted: PostGIS, for one, has implicit casts with functions.
const implicitCastsSQL = `
SELECT pg_catalog.format_type(c.castsource, NULL) || ' -> ' || pg_catalog.format_type(c.casttarget, NULL)
FROM pg_catalog.pg_cast c
LEFT JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
JOIN pg_catalog.pg_type tt ON tt.oid = c.casttarget
JOIN pg_catalog.pg_namespace tn ON tn.oid = tt.typnamespace
WHERE (c.castcontext = 'i' OR c.casttarget IN ('pg_catalog.json'::pg_catalog.regtype, 'pg_catalog.jsonb'::pg_catalog.regtype))
  AND ((c.castmethod = 'f' AND pn.nspname <> 'pg_catalog'
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                          AND d.objid = p.oid AND d.deptype = 'e'))
    OR (c.castmethod = 'i' AND tn.nspname <> 'pg_catalog'
        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                        WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                          AND d.objid = tt.oid AND d.deptype = 'e')))
ORDER BY 1`

// Views give their definition; tables with row security give their
// policies' expressions; a table and its inheritance descendants give the
// CHECK constraints, index expressions, partial-index predicates and
// statistics expressions (PostgreSQL 14 and later) that call a user
// function marked immutable, which planning a read folds
// (sqlkind.RelationInfo.Checks).
const relsSQL = `
SELECT q.s, q.n,
       CASE WHEN c.relkind = 'v' THEN pg_catalog.pg_get_viewdef(c.oid) END,
       ARRAY(SELECT pg_catalog.pg_get_expr(e.x, c.oid)
             FROM pg_catalog.pg_policy pol,
                  LATERAL (VALUES (pol.polqual), (pol.polwithcheck)) AS e(x)
             WHERE pol.polrelid = c.oid AND c.relrowsecurity AND e.x IS NOT NULL),
       ARRAY(WITH RECURSIVE d(oid) AS (
               SELECT c.oid
               UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.oid),
             planned(classid, objid, x) AS (
               SELECT con.tableoid::pg_catalog.oid, con.oid, pg_catalog.pg_get_expr(con.conbin, con.conrelid)
               FROM pg_catalog.pg_constraint con
               WHERE con.contype = 'c' AND con.conrelid IN (SELECT oid FROM d)
               UNION ALL
               SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, ix.indexrelid, e.x
               FROM pg_catalog.pg_index ix
               CROSS JOIN LATERAL (
                 SELECT pg_catalog.pg_get_indexdef(ix.indexrelid, k + 1, false)
                 FROM pg_catalog.generate_series(0, ix.indnatts - 1) k WHERE ix.indkey[k] = 0
                 UNION ALL
                 SELECT pg_catalog.pg_get_expr(ix.indpred, ix.indrelid) WHERE ix.indpred IS NOT NULL) e(x)
               WHERE ix.indrelid IN (SELECT oid FROM d)
               UNION ALL
               SELECT st.tableoid::pg_catalog.oid, st.oid, pg_catalog.unnest(pg_catalog.pg_get_statisticsobjdef_expressions(st.oid))
               FROM pg_catalog.pg_statistic_ext st
               WHERE st.stxrelid IN (SELECT oid FROM d))
             -- A scalar sub-select, not EXISTS: it stays a per-row index
             -- probe instead of a hash of every user function.
             SELECT pl.x FROM planned pl
             WHERE (SELECT true FROM pg_catalog.pg_depend dep
                    JOIN pg_catalog.pg_proc p ON p.oid = dep.refobjid
                    JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
                    WHERE dep.classid = pl.classid AND dep.objid = pl.objid
                      AND dep.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                      AND p.provolatile = 'i' AND pn.nspname <> 'pg_catalog'
                    LIMIT 1))
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

// UserImplicitCasts implements sqlkind.CastCatalog.
func (c *Catalog) UserImplicitCasts(ctx context.Context) ([]string, error) {
	c.casts.mu.RLock()
	e, ok := c.casts.m[""]
	c.casts.mu.RUnlock()
	if ok && !c.now().After(e.expires) {
		return e.v.([]string), nil
	}
	rows, err := c.q.Query(ctx, implicitCastsSQL)
	if err != nil {
		return nil, fmt.Errorf("querying the upstream catalog for casts: %w", err)
	}
	casts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("reading the upstream catalog: %w", err)
	}
	c.store(&c.casts, []string{""}, map[string]any{"": casts})
	return casts, nil
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
			var policies, checks []string
			if err := rows.Scan(&s, &n, &view, &policies, &checks); err != nil {
				return nil, fmt.Errorf("reading the upstream catalog: %w", err)
			}
			k := joinName(s, n)
			info := acc[k]
			if view != nil {
				info.Views = append(info.Views, *view)
			}
			info.Policies = append(info.Policies, policies...)
			info.Checks = append(info.Checks, checks...)
			acc[k] = info
		}
		out := make(map[string]any, len(acc))
		for k, v := range acc {
			out[k] = v
		}
		return out, rows.Err()
	})
}
