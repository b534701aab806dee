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

// Code types are the types whose input, when a value is converted to them,
// runs code that is neither PostgreSQL's nor an extension's, or a volatile
// function: a domain whose CHECK constraint calls such a function (directly
// or through an operator), a base type with such an input function, and
// every array, row type, range, multirange and domain built on one (and a
// domain whose CHECK converts to one); and a range whose subtype operator
// class has such a support function (range_in orders the bounds with its
// comparison function) or whose canonical or subtype_diff function is one
// (planning a read of a range column estimates with subtype_diff). A CHECK's functions and operators
// are read from its stored tree (conbin: every function and operator call
// is a node naming its oid there, and constants are stored as bytes, so no
// text of the user's can pose as one): pg_depend does not record what is
// built in. PostgreSQL converts a string
// constant to its target type while it parses a statement, and a bound
// parameter while it binds one, so such a conversion runs before the
// gateway decides an extended-protocol statement; and any expression that
// meets a column of such a type may convert another value to it (COALESCE,
// UNION, array_append). The *_to_xml family is counted as volatile: it runs
// queries named at run time.
const codeTypesSQL = `
WITH RECURSIVE
code_proc(oid) AS (
  SELECT p.oid FROM pg_catalog.pg_proc p
  JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
  WHERE p.provolatile = 'v' OR p.proname LIKE '%to\_xml%'
     OR (n.nspname <> 'pg_catalog' AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_depend e
           WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND e.objid = p.oid AND e.deptype = 'e'))),
edge(child, parent) AS (
  SELECT t.oid, t.typbasetype FROM pg_catalog.pg_type t WHERE t.typtype = 'd'
  UNION ALL SELECT t.oid, t.typelem FROM pg_catalog.pg_type t WHERE t.typelem <> 0
  UNION ALL SELECT t.oid, a.atttypid FROM pg_catalog.pg_type t
    JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid
    WHERE t.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL SELECT r.rngtypid, r.rngsubtype FROM pg_catalog.pg_range r
  UNION ALL SELECT r.rngmultitypid, r.rngtypid FROM pg_catalog.pg_range r
  UNION ALL SELECT con.contypid, d.refobjid FROM pg_catalog.pg_constraint con
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass AND d.objid = con.oid
    WHERE con.contypid <> 0 AND d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass),
code(oid) AS (
  SELECT con.contypid FROM pg_catalog.pg_constraint con
  CROSS JOIN LATERAL pg_catalog.regexp_matches(con.conbin::pg_catalog.text, ':(funcid|opfuncid|opno) (\d+)', 'g') m
  LEFT JOIN pg_catalog.pg_operator o ON m[1] = 'opno' AND o.oid = m[2]::pg_catalog.oid
  WHERE con.contypid <> 0
    AND ((m[1] <> 'opno' AND m[2]::pg_catalog.oid IN (SELECT oid FROM code_proc))
      OR o.oprcode IN (SELECT oid FROM code_proc))
  UNION SELECT t.oid FROM pg_catalog.pg_type t
  WHERE t.typtype = 'b' AND (t.typinput IN (SELECT oid FROM code_proc) OR t.typreceive IN (SELECT oid FROM code_proc))
  UNION SELECT r.rngtypid FROM pg_catalog.pg_range r
  JOIN pg_catalog.pg_opclass oc ON oc.oid = r.rngsubopc
  WHERE r.rngcanonical::pg_catalog.oid IN (SELECT oid FROM code_proc)
     OR r.rngsubdiff::pg_catalog.oid IN (SELECT oid FROM code_proc)
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_amproc ap
                WHERE ap.amprocfamily = oc.opcfamily AND ap.amproc::pg_catalog.oid IN (SELECT oid FROM code_proc))
  UNION SELECT e.child FROM edge e JOIN code ON e.parent = code.oid)
SELECT oid, pg_catalog.format_type(oid, NULL) FROM code ORDER BY 2`

// Views give their definition; tables with row security give their
// policies' expressions; a table and its inheritance descendants give the
// CHECK constraints, index expressions, partial-index predicates,
// statistics expressions (PostgreSQL 14 and later) and partition key
// expressions that call a user function marked immutable, which planning a
// read folds
// (sqlkind.RelationInfo.Checks); and the columns of a code type ($3, from
// codeTypesSQL: sqlkind.RelationInfo.CodeColumns), with the partition keys
// and index keys of the table and its descendants whose operator class has
// a support function of user code: planning a read prunes partitions with
// it, and probes (planning) and scans (execution) a btree index with its
// comparison function.
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
               WHERE st.stxrelid IN (SELECT oid FROM d)
               UNION ALL
               -- The relcache folds a partition key's expressions when it
               -- first loads them; their dependencies are the table's own.
               SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid, pt.partrelid,
                      pg_catalog.pg_get_expr(pt.partexprs, pt.partrelid)
               FROM pg_catalog.pg_partitioned_table pt
               WHERE pt.partrelid IN (SELECT oid FROM d) AND pt.partexprs IS NOT NULL)
             -- A scalar sub-select, not EXISTS: it stays a per-row index
             -- probe instead of a hash of every user function.
             SELECT pl.x FROM planned pl
             WHERE (SELECT true FROM pg_catalog.pg_depend dep
                    JOIN pg_catalog.pg_proc p ON p.oid = dep.refobjid
                    JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
                    WHERE dep.classid = pl.classid AND dep.objid = pl.objid
                      AND dep.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                      AND p.provolatile = 'i' AND pn.nspname <> 'pg_catalog'
                    LIMIT 1)),
       ARRAY(SELECT pg_catalog.quote_ident(a.attname) || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
             FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid = ANY($3::pg_catalog.oid[])
             ORDER BY a.attnum)
       || ARRAY(WITH RECURSIVE d(oid) AS (
                  SELECT c.oid
                  UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d ON i.inhparent = d.oid),
                keyed(what, cls) AS (
                  SELECT 'partition key of ' || pt.partrelid::pg_catalog.regclass::pg_catalog.text, pt.partclass[k]
                  FROM pg_catalog.pg_partitioned_table pt
                  CROSS JOIN LATERAL pg_catalog.generate_series(0, pt.partnatts - 1) k
                  WHERE pt.partrelid IN (SELECT oid FROM d)
                  UNION ALL
                  SELECT 'index ' || ix.indexrelid::pg_catalog.regclass::pg_catalog.text, ix.indclass[k]
                  FROM pg_catalog.pg_index ix
                  CROSS JOIN LATERAL pg_catalog.generate_series(0, ix.indnkeyatts - 1) k
                  WHERE ix.indrelid IN (SELECT oid FROM d))
                SELECT DISTINCT kd.what || ' (operator class ' || oc.opcname::pg_catalog.text
                       || ', support function ' || ap.amproc::pg_catalog.text || ')'
                FROM keyed kd
                JOIN pg_catalog.pg_opclass oc ON oc.oid = kd.cls
                JOIN pg_catalog.pg_amproc ap ON ap.amprocfamily = oc.opcfamily
                JOIN pg_catalog.pg_proc p ON p.oid = ap.amproc
                JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
                WHERE p.provolatile = 'v' OR (pn.nspname <> 'pg_catalog' AND NOT EXISTS (
                        SELECT 1 FROM pg_catalog.pg_depend e
                        WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND e.objid = p.oid
                          AND e.deptype = 'e')))
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

// CodeTypes implements sqlkind.CodeTypeCatalog.
func (c *Catalog) CodeTypes(ctx context.Context) ([]string, error) {
	ct, err := c.codeTypes(ctx)
	return ct.names, err
}

func (c *Catalog) codeTypes(ctx context.Context) (codeTypes, error) {
	c.code.mu.RLock()
	e, ok := c.code.m[""]
	c.code.mu.RUnlock()
	if ok && !c.now().After(e.expires) {
		return e.v.(codeTypes), nil
	}
	rows, err := c.q.Query(ctx, codeTypesSQL)
	if err != nil {
		return codeTypes{}, fmt.Errorf("querying the upstream catalog for types that run user code: %w", err)
	}
	defer rows.Close()
	var ct codeTypes
	for rows.Next() {
		var oid uint32
		var name string
		if err := rows.Scan(&oid, &name); err != nil {
			return codeTypes{}, fmt.Errorf("reading the upstream catalog: %w", err)
		}
		ct.oids, ct.names = append(ct.oids, oid), append(ct.names, name)
	}
	if err := rows.Err(); err != nil {
		return codeTypes{}, fmt.Errorf("reading the upstream catalog: %w", err)
	}
	c.store(&c.code, []string{""}, map[string]any{"": ct})
	return ct, nil
}

// Relations implements sqlkind.Catalog.
func (c *Catalog) Relations(ctx context.Context, names []string) (map[string]sqlkind.RelationInfo, error) {
	return cached[sqlkind.RelationInfo](ctx, c, &c.rels, names, func(ctx context.Context, schemas, bases []string) (map[string]any, error) {
		ct, err := c.codeTypes(ctx)
		if err != nil {
			return nil, err
		}
		oids := ct.oids
		if oids == nil {
			oids = []uint32{} // an empty array, not NULL: = ANY(NULL) is NULL
		}
		rows, err := c.q.Query(ctx, relsSQL, schemas, bases, oids)
		if err != nil {
			return nil, fmt.Errorf("querying the upstream catalog for relations: %w", err)
		}
		defer rows.Close()
		acc := map[string]sqlkind.RelationInfo{}
		for rows.Next() {
			var s, n string
			var view *string
			var policies, checks, codeCols []string
			if err := rows.Scan(&s, &n, &view, &policies, &checks, &codeCols); err != nil {
				return nil, fmt.Errorf("reading the upstream catalog: %w", err)
			}
			k := joinName(s, n)
			info := acc[k]
			if view != nil {
				info.Views = append(info.Views, *view)
			}
			info.Policies = append(info.Policies, policies...)
			info.Checks = append(info.Checks, checks...)
			info.CodeColumns = append(info.CodeColumns, codeCols...)
			acc[k] = info
		}
		out := make(map[string]any, len(acc))
		for k, v := range acc {
			out[k] = v
		}
		return out, rows.Err()
	})
}
