package pgestimate

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/postgres"
	"github.com/countersign/countersign/internal/review"
	"github.com/jackc/pgx/v5/pgconn"
)

// forced are settings of the estimator's connection that a database or
// role default must not change. They are sent at startup (which outranks
// both; only ones a pooler such as PgBouncer passes on), set again for the
// transaction with the others, and checked before anything of the
// statement's is looked at:
//   - client_encoding UTF8 and standard_conforming_strings on: pg_query
//     reads the text that way; if the server read a backslash or a byte
//     otherwise, what inspect saw inside a string literal would run;
//   - constraint_exclusion partition (set for the transaction): "on" has
//     the planner evaluate the CHECK constraints of the table;
//   - jit off (likewise): nothing of the plan is compiled.
var forced = [][2]string{
	{"client_encoding", "UTF8"},
	{"standard_conforming_strings", "on"},
}

// errUnplanned is the reason when the upstream refused to plan: its own
// message is never shown, as it may carry data (a setting's value, a row)
// the statement was written to reveal.
const errUnplanned noEstimate = "the upstream could not plan it"

// Reasons that may not hold on another try (a lock held by a VACUUM, a
// timeout, a table renamed meanwhile): they are not kept for the review.
const (
	errLocked  noEstimate = "the statement's table could not be locked for the estimate"
	errChanged noEstimate = "the statement's table changed during the estimate"
)

// transient tells the reasons of errors not to keep.
func transient(ne noEstimate) bool {
	return ne == errUnplanned || ne == errLocked || ne == errChanged
}

// explain locks the table against changes to what the checks read, checks
// the catalog, and runs EXPLAIN (no ANALYZE) inside a READ ONLY
// transaction that is rolled back, on a connection of its own: even if a
// check missed something, the planner could not write.
func (e *Estimator) explain(ctx context.Context, res *config.Resource, r review.Review, st statement) (int64, error) {
	cfg, err := postgres.UpstreamConfig(res)
	if err != nil {
		return 0, err
	}
	cfg.RuntimeParams["application_name"] = "countersign estimate"
	for _, kv := range forced {
		cfg.RuntimeParams[kv[0]] = kv[1]
	}
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	// Closing the connection ends the transaction without committing it.
	defer c.Close(context.WithoutCancel(ctx))
	// The transaction starts read-write only to take the lock below (a
	// READ ONLY one may not take it) and turns READ ONLY before anything
	// of the statement's is looked at; it never writes.
	if err := c.Exec(ctx, "BEGIN; SET LOCAL statement_timeout = '2s'; SET LOCAL lock_timeout = '500ms'; "+
		"SET LOCAL client_encoding = 'UTF8'; SET LOCAL standard_conforming_strings = on; SET LOCAL constraint_exclusion = partition; SET LOCAL jit = off").Close(); err != nil {
		return 0, err
	}
	if err := e.setConfig(ctx, c, "search_path", r.State.SearchPath); err != nil {
		return 0, err
	}
	oid, schema, table, err := e.lockTable(ctx, c, st, r.State.Role)
	if err != nil {
		return 0, err
	}
	if err := c.Exec(ctx, "SET LOCAL transaction_read_only = on").Close(); err != nil {
		return 0, err
	}
	if err := checkSettings(ctx, c); err != nil {
		return 0, err
	}
	if err := e.setConfig(ctx, c, "role", r.State.Role); err != nil {
		return 0, err
	}
	// What is explained is the statement with its table named in full,
	// under search_path pg_catalog alone: a function, operator or type
	// created elsewhere after the checks cannot be what a name resolves to.
	// It is inspected again, as it is what the server reads.
	text, err := qualify(r.Text, schema, table)
	if err != nil {
		return 0, noEstimate("the statement could not be written out for the estimate")
	}
	st2, why := inspect(text)
	if why != "" || st2.schema != schema || st2.table != table {
		e.log.Debug("row estimate: the qualified statement differs", "review", r.ID)
		return 0, noEstimate("the statement could not be written out for the estimate")
	}
	if err := checkCatalog(ctx, c, oid, st2, r.Params); err != nil {
		return 0, err
	}
	if err := e.setConfig(ctx, c, "search_path", "pg_catalog, pg_temp"); err != nil {
		return 0, err
	}
	oids, formats, values := params(r.Params)
	out := c.ExecParams(ctx, Marker+"EXPLAIN (FORMAT JSON) "+text, values, oids, formats, nil).Read()
	if out.Err != nil {
		e.log.Debug("row estimate: the upstream could not plan", "review", r.ID, "cause", cause(out.Err))
		return 0, errUnplanned
	}
	if len(out.Rows) != 1 || len(out.Rows[0]) != 1 {
		return 0, errors.New("EXPLAIN returned no plan")
	}
	return planRows(out.Rows[0][0])
}

// setConfig sets a setting of the review's session (or the estimator's)
// for the transaction.
func (e *Estimator) setConfig(ctx context.Context, c *pgconn.PgConn, name, value string) error {
	if value == "" {
		return nil
	}
	r := c.ExecParams(ctx, "SELECT set_config($1, $2, true)", [][]byte{[]byte(name), []byte(value)}, nil, nil, nil).Read()
	if r.Err != nil {
		e.log.Debug("row estimate: a setting was refused", "setting", name, "cause", cause(r.Err))
		return noEstimate("the session state of the review (" + name + ") cannot be set for the estimate")
	}
	return nil
}

// lockTable resolves the statement's table under the review's search_path
// and role (a "$user" in the path is the role's) and locks it, as the
// estimator's own user (who may, where the role may not), SHARE UPDATE
// EXCLUSIVE: writers go on, but no index, statistics, constraint, rule,
// policy, default, child or column change can come between the checks and
// the plan. It returns the table's oid, schema and name.
func (e *Estimator) lockTable(ctx context.Context, c *pgconn.PgConn, st statement, role string) (string, string, string, error) {
	name := quoteIdent(st.table)
	if st.schema != "" {
		name = quoteIdent(st.schema) + "." + name
	}
	if err := e.setConfig(ctx, c, "role", role); err != nil {
		return "", "", "", err
	}
	const resolve = `SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE c.oid = to_regclass($1)`
	r := c.ExecParams(ctx, resolve, [][]byte{[]byte(name)}, nil, nil, nil).Read()
	if r.Err != nil || len(r.Rows) != 1 {
		return "", "", "", noEstimate("the statement's table was not found")
	}
	if role != "" {
		if err := e.setConfig(ctx, c, "role", "none"); err != nil {
			return "", "", "", err
		}
	}
	oid, schema, table := string(r.Rows[0][0]), string(r.Rows[0][1]), string(r.Rows[0][2])
	full := quoteIdent(schema) + "." + quoteIdent(table)
	if err := c.Exec(ctx, "LOCK TABLE ONLY "+full+" IN SHARE UPDATE EXCLUSIVE MODE").Close(); err != nil {
		e.log.Debug("row estimate: the table could not be locked", "cause", cause(err))
		return "", "", "", errLocked
	}
	// The name could have moved to another table before the lock.
	r = c.ExecParams(ctx, "SELECT to_regclass($1)::oid = $2::oid", [][]byte{[]byte(full), []byte(oid)}, nil, nil, nil).Read()
	if r.Err != nil || len(r.Rows) != 1 || string(r.Rows[0][0]) != "t" {
		return "", "", "", errChanged
	}
	return oid, schema, table, nil
}

// checkSettings makes sure the forced settings (and READ ONLY) hold.
func checkSettings(ctx context.Context, c *pgconn.PgConn) error {
	r := c.ExecParams(ctx, `SELECT current_setting('transaction_read_only'), current_setting('standard_conforming_strings'),
	   current_setting('constraint_exclusion'), current_setting('client_encoding'), current_setting('jit')`, nil, nil, nil, nil).Read()
	if r.Err != nil || len(r.Rows) != 1 {
		return noEstimate("the estimator's settings could not be checked")
	}
	got := make([]string, len(r.Rows[0]))
	for i, v := range r.Rows[0] {
		got[i] = string(v)
	}
	if strings.Join(got, ",") != "on,on,partition,UTF8,off" {
		return noEstimate("the upstream does not keep the settings the estimate needs (read only, standard_conforming_strings, constraint_exclusion, client_encoding, jit)")
	}
	return nil
}

// catalogChecks must each count zero for the statement to be explained.
// $1 is the table's oid; $2 the functions called; $3 the columns named;
// $4 the types cast to; $5 the types of the parameters (0 when the server
// infers it, which can only be from the table or a pg_catalog object).
var catalogChecks = []struct {
	sql string
	why noEstimate
}{
	{`SELECT count(*) FROM pg_class WHERE oid = $1 AND (relkind <> 'r' OR relhasrules OR relrowsecurity OR relhassubclass OR relispartition
	   OR relam <> (SELECT oid FROM pg_am WHERE amname = 'heap'))`,
		"the table has rules, row security, partitions or children, or is not a plain table"},
	{`SELECT count(*) FROM pg_inherits WHERE inhrelid = $1`,
		"the table is a partition or inherits from another"},
	{`SELECT count(*) FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
	   WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND (t.typnamespace <> 'pg_catalog'::regnamespace OR t.typtype = 'd')`,
		"the table has a column of a domain or of a type defined outside pg_catalog"},
	{`SELECT count(*) FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated <> ''`,
		"the table has generated columns, whose expressions the planner evaluates"},
	{`SELECT count(*) FROM pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
	   WHERE ad.adrelid = $1 AND ` + foreignDep,
		"a default of the table uses a function, operator or type defined outside pg_catalog"},
	{`SELECT count(*) FROM pg_constraint co JOIN pg_depend d ON d.classid = 'pg_constraint'::regclass AND d.objid = co.oid
	   WHERE co.conrelid = $1 AND ` + foreignDep,
		"a constraint of the table uses a function, operator or type defined outside pg_catalog"},
	{`SELECT count(*) FROM pg_index WHERE indrelid = $1 AND (indexprs IS NOT NULL OR indpred IS NOT NULL)`,
		"the table has an index on expressions or a partial index, which the planner evaluates"},
	{`SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam JOIN pg_proc p ON p.oid = a.amhandler
	   WHERE i.indrelid = $1 AND (p.pronamespace <> 'pg_catalog'::regnamespace
	     OR EXISTS (SELECT 1 FROM unnest(i.indclass::oid[]) AS oc(oid) JOIN pg_opclass o ON o.oid = oc.oid
	                WHERE o.opcnamespace <> 'pg_catalog'::regnamespace))`,
		"an index of the table uses an access method or operator class defined outside pg_catalog"},
	{`SELECT count(*) FROM pg_statistic_ext WHERE stxrelid = $1 AND stxexprs IS NOT NULL`,
		"the table has statistics on expressions, which the planner evaluates"},
	{`SELECT count(*) FROM pg_proc WHERE proname = ANY($2) AND pronamespace <> 'pg_catalog'::regnamespace`,
		"a function the statement calls is also defined outside pg_catalog"},
	{`SELECT count(*) FROM unnest($3) AS n(name)
	   WHERE NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1 AND attname = n.name AND attnum > 0 AND NOT attisdropped)`,
		"the statement names something that is not a column of its table"},
	{`SELECT count(*) FROM pg_type WHERE typname = ANY($4) AND typnamespace <> 'pg_catalog'::regnamespace`,
		"the statement casts to a type also defined outside pg_catalog"},
	{`SELECT count(*) FROM unnest($5) AS p(t)
	   WHERE t <> 0 AND NOT EXISTS (SELECT 1 FROM pg_type WHERE oid = p.t AND typtype = 'b' AND typnamespace = 'pg_catalog'::regnamespace)`,
		"a parameter is typed as a domain or a type defined outside pg_catalog, whose input the server would run"},
	{`SELECT count(*) FROM pg_operator WHERE oprnamespace <> 'pg_catalog'::regnamespace`,
		"the database defines its own operators, which the planner may call"},
	{`SELECT count(*) FROM pg_cast c JOIN pg_proc p ON p.oid = c.castfunc WHERE p.pronamespace <> 'pg_catalog'::regnamespace`,
		"the database defines its own casts, which the planner may call"},
}

// foreignDep holds for a pg_depend row d on a function, operator or type
// outside pg_catalog.
const foreignDep = `(
	(d.refclassid = 'pg_proc'::regclass AND EXISTS (SELECT 1 FROM pg_proc WHERE oid = d.refobjid AND pronamespace <> 'pg_catalog'::regnamespace))
	OR (d.refclassid = 'pg_operator'::regclass AND EXISTS (SELECT 1 FROM pg_operator WHERE oid = d.refobjid AND oprnamespace <> 'pg_catalog'::regnamespace))
	OR (d.refclassid = 'pg_type'::regclass AND EXISTS (SELECT 1 FROM pg_type WHERE oid = d.refobjid AND (typnamespace <> 'pg_catalog'::regnamespace OR typtype = 'd'))))`

func checkCatalog(ctx context.Context, c *pgconn.PgConn, oid string, st statement, ps []review.Param) error {
	types := make([]string, len(ps))
	for i, p := range ps {
		types[i] = strconv.FormatUint(uint64(p.Type), 10)
	}
	args := [][]byte{[]byte(oid), textArray(st.funcs), textArray(st.columns), textArray(st.types), []byte("{" + strings.Join(types, ",") + "}")}
	oids := []uint32{26, 1009, 1009, 1009, 1028} // oid, text[], text[], text[], oid[]
	for _, chk := range catalogChecks {
		out := c.ExecParams(ctx, chk.sql, args, oids, nil, nil).Read()
		if out.Err != nil {
			return out.Err
		}
		if len(out.Rows) != 1 || string(out.Rows[0][0]) != "0" {
			return chk.why
		}
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// textArray is a PostgreSQL array literal of the strings.
func textArray(ss []string) []byte {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	return []byte("{" + strings.Join(parts, ",") + "}")
}
