package pgestimate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/postgres"
	"github.com/countersign/countersign/internal/review"
	"github.com/jackc/pgx/v5/pgconn"
	pg "github.com/pganalyze/pg_query_go/v6"
)

// Marker starts every EXPLAIN the estimator sends, so that whoever reads
// the upstream's statement log (a DBA, the end-to-end tests that prove a
// held write never ran) can tell the gateway's estimate, which executes
// nothing, from the statement itself.
const Marker = "/* countersign estimate: EXPLAIN only, nothing runs */ "

// timeout bounds one estimate, connection included: an approver waits for
// it, and the planner of a legitimate statement needs far less.
const timeout = 5 * time.Second

// maxText bounds the statements explained; a longer one gets no estimate
// (parsing and planning it is work an approver's click should not cause).
const maxText = 64 << 10

// readFuncs are the functions a statement may call and still be explained:
// built-ins of pg_catalog that are immutable or stable and change nothing.
// A name also defined outside pg_catalog (an overload or a shadow) gets no
// estimate, whatever the search_path.
var readFuncs = []string{
	"abs", "age", "btrim", "ceil", "ceiling", "char_length", "concat", "concat_ws",
	"current_date", "date_part", "date_trunc", "floor", "greatest", "initcap", "least",
	"left", "length", "lower", "lpad", "ltrim", "make_date", "make_interval", "md5",
	"mod", "now", "octet_length", "position", "power", "replace", "right", "round",
	"rpad", "rtrim", "split_part", "sqrt", "starts_with", "strpos", "substr", "substring",
	"to_char", "to_date", "to_timestamp", "trim", "trunc", "upper",
}

// Estimator is review.Estimator for the PostgreSQL resources of a config.
type Estimator struct {
	resources map[string]*config.Resource
	log       *slog.Logger
}

var _ review.Estimator = (*Estimator)(nil)

// New returns the estimator of the config's PostgreSQL resources.
func New(cfg *config.Config, log *slog.Logger) *Estimator {
	if log == nil {
		log = slog.Default()
	}
	e := &Estimator{resources: map[string]*config.Resource{}, log: log}
	for i := range cfg.Resources {
		if r := &cfg.Resources[i]; r.Type == "postgres" {
			e.resources[r.Name] = r
		}
	}
	return e
}

// noEstimate is a reason there is none, said to the approver.
type noEstimate string

// EstimateRows implements review.Estimator.
func (e *Estimator) EstimateRows(ctx context.Context, r review.Review) (int64, bool, string) {
	res, ok := e.resources[r.Resource]
	switch {
	case !ok || r.Dialect != "postgres":
		return 0, false, "not a PostgreSQL resource"
	case r.Type == review.TypeGrant:
		return 0, false, "a grant has no statement"
	}
	st, why := inspect(r.Text)
	if why != "" {
		return 0, false, string(why)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rows, err := e.explain(ctx, res, r, st)
	var ne noEstimate
	switch {
	case errors.As(err, &ne):
		return 0, false, string(ne)
	case err != nil:
		e.log.Warn("row estimate failed", "review", r.ID, "resource", r.Resource, "err", err)
		return 0, false, "the upstream did not answer the estimate"
	}
	return rows, true, ""
}

func (n noEstimate) Error() string { return string(n) }

// statement is what inspect learned of the text.
type statement struct {
	schema, table string
	funcs         []string // lower-cased names, unqualified
	types         []string // type names cast to
	columns       []string // every column named
}

// inspect accepts exactly one plain INSERT, UPDATE or DELETE on one table
// whose expressions use only columns of that table, constants, parameters,
// built-in operators and readFuncs: nothing the planner could run user code
// for. Anything else is refused with the reason.
func inspect(text string) (statement, noEstimate) {
	var st statement
	if len(text) > maxText {
		return st, "the statement is too long to explain"
	}
	js, err := pg.ParseToJSON(text)
	if err != nil {
		return st, "the statement does not parse"
	}
	var tree struct {
		Stmts []struct {
			Stmt map[string]map[string]any `json:"stmt"`
		} `json:"stmts"`
	}
	if err := json.Unmarshal([]byte(js), &tree); err != nil || len(tree.Stmts) != 1 {
		return st, "only a single statement is explained"
	}
	var body map[string]any
	for k, v := range tree.Stmts[0].Stmt {
		switch k {
		case "InsertStmt", "UpdateStmt", "DeleteStmt":
			body = v
		default:
			return st, "only a plain INSERT, UPDATE or DELETE is explained"
		}
	}
	rel, _ := body["relation"].(map[string]any)
	st.schema, _ = rel["schemaname"].(string)
	st.table, _ = rel["relname"].(string)
	if st.table == "" || rel["catalogname"] != nil {
		return st, "the statement's table is not plain"
	}
	delete(body, "relation")
	w := walker{st: &st}
	w.walk(body)
	if w.bad != "" {
		return st, w.bad
	}
	return st, ""
}

// walker collects what the expressions use and refuses what could run
// code or read another relation.
type walker struct {
	st  *statement
	bad noEstimate
}

func (w *walker) refuse(why noEstimate) {
	if w.bad == "" {
		w.bad = why
	}
}

func (w *walker) walk(v any) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			w.walk(e)
		}
	case map[string]any:
		for k, e := range x {
			w.node(k, e)
		}
	}
}

func (w *walker) node(k string, v any) {
	switch k {
	case "WithClause", "withClause", "RangeVar", "RangeFunction", "RangeSubselect", "RangeTableFunc",
		"fromClause", "usingClause", "SubLink", "FuncCall":
		if k == "FuncCall" {
			w.funcCall(v)
			return
		}
		w.refuse("the statement reads other relations or subqueries; only single-table statements are explained")
		return
	case "TypeCast":
		m, _ := v.(map[string]any)
		if tn, ok := m["typeName"].(map[string]any); ok {
			names := strs(tn["names"])
			if len(names) > 2 || (len(names) == 2 && names[0] != "pg_catalog") {
				w.refuse("the statement casts to a type outside pg_catalog")
			}
			if len(names) > 0 {
				w.st.types = append(w.st.types, names[len(names)-1])
			}
		}
		w.walk(m["arg"])
		return
	case "ColumnRef":
		m, _ := v.(map[string]any)
		f, _ := m["fields"].([]any)
		names := strs(f)
		if len(names) != len(f) && len(names) > 0 { // t.* and the like
			w.refuse("the statement uses a star reference")
			return
		}
		if len(names) > 0 {
			// t.f is f(t) when t has no column f: every name must be a
			// column of the table, checked in the catalog.
			w.st.columns = append(w.st.columns, names[len(names)-1])
		}
		return
	}
	w.walk(v)
}

func (w *walker) funcCall(v any) {
	m, _ := v.(map[string]any)
	names := strs(m["funcname"])
	if len(names) == 0 || len(names) > 2 || (len(names) == 2 && names[0] != "pg_catalog") {
		w.refuse("the statement calls a function outside pg_catalog")
		return
	}
	name := strings.ToLower(names[len(names)-1])
	if !slices.Contains(readFuncs, name) || m["agg_filter"] != nil || m["over"] != nil {
		w.refuse(noEstimate(fmt.Sprintf("the statement calls %s, which is not on the read-only allow-list", name)))
		return
	}
	w.st.funcs = append(w.st.funcs, name)
	w.walk(m["args"])
}

// strs reads a list of {"String": {"sval": ...}} nodes.
func strs(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, e := range l {
		m, _ := e.(map[string]any)
		s, _ := m["String"].(map[string]any)
		if sv, ok := s["sval"].(string); ok {
			out = append(out, sv)
		}
	}
	return out
}

// explain checks the catalog and runs EXPLAIN (no ANALYZE), all inside a
// READ ONLY transaction that is rolled back, on a connection of its own:
// even if a check missed something, the planner could not write.
func (e *Estimator) explain(ctx context.Context, res *config.Resource, r review.Review, st statement) (int64, error) {
	cfg, err := postgres.UpstreamConfig(res)
	if err != nil {
		return 0, err
	}
	cfg.RuntimeParams["application_name"] = "countersign estimate"
	c, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	// Closing the connection ends the transaction without committing it.
	defer c.Close(context.WithoutCancel(ctx))
	if err := c.Exec(ctx, "BEGIN READ ONLY; SET LOCAL statement_timeout = '2s'; SET LOCAL lock_timeout = '500ms'").Close(); err != nil {
		return 0, err
	}
	if err := setState(ctx, c, r.State); err != nil {
		return 0, err
	}
	if err := checkCatalog(ctx, c, st); err != nil {
		return 0, err
	}
	oids, formats, values := params(r.Params)
	out := c.ExecParams(ctx, Marker+"EXPLAIN (FORMAT JSON) "+r.Text, values, oids, formats, nil).Read()
	if out.Err != nil {
		return 0, noEstimate("the upstream could not plan the statement: " + firstLine(out.Err.Error()))
	}
	if len(out.Rows) != 1 || len(out.Rows[0]) != 1 {
		return 0, errors.New("EXPLAIN returned no plan")
	}
	return planRows(out.Rows[0][0])
}

// setState applies the review's search_path and role, so the statement
// resolves as it would in the initiator's session.
func setState(ctx context.Context, c *pgconn.PgConn, s review.SessionState) error {
	for _, kv := range [][2]string{{"role", s.Role}, {"search_path", s.SearchPath}} {
		if kv[1] == "" {
			continue
		}
		r := c.ExecParams(ctx, "SELECT set_config($1, $2, true)", [][]byte{[]byte(kv[0]), []byte(kv[1])}, nil, nil, nil).Read()
		if r.Err != nil {
			return noEstimate("the session state of the review (" + kv[0] + ") cannot be set for the estimate")
		}
	}
	return nil
}

// catalogChecks must each count zero for the statement to be explained.
// $1 is the table's oid; $2 the functions called; $3 the columns named;
// $4 the types cast to.
var catalogChecks = []struct {
	sql string
	why noEstimate
}{
	{`SELECT count(*) FROM pg_class WHERE oid = $1 AND (relkind <> 'r' OR relhasrules OR relrowsecurity OR relhassubclass)`,
		"the table has rules, row security, partitions or children, or is not a plain table"},
	{`SELECT count(*) FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
	   WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND t.typnamespace <> 'pg_catalog'::regnamespace`,
		"the table has a column of a type defined outside pg_catalog"},
	{`SELECT count(*) FROM pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
	   JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass AND p.oid = d.refobjid
	   WHERE ad.adrelid = $1 AND p.pronamespace <> 'pg_catalog'::regnamespace`,
		"a default or generated column of the table calls a function defined outside pg_catalog"},
	{`SELECT count(*) FROM pg_proc WHERE proname = ANY($2) AND pronamespace <> 'pg_catalog'::regnamespace`,
		"a function the statement calls is also defined outside pg_catalog"},
	{`SELECT count(*) FROM unnest($3) AS n(name)
	   WHERE NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $1 AND attname = n.name AND attnum > 0 AND NOT attisdropped)`,
		"the statement names something that is not a column of its table"},
	{`SELECT count(*) FROM pg_type WHERE typname = ANY($4) AND typnamespace <> 'pg_catalog'::regnamespace`,
		"the statement casts to a type also defined outside pg_catalog"},
	{`SELECT count(*) FROM pg_operator WHERE oprnamespace <> 'pg_catalog'::regnamespace`,
		"the database defines its own operators, which the planner may call"},
	{`SELECT count(*) FROM pg_cast c JOIN pg_proc p ON p.oid = c.castfunc WHERE p.pronamespace <> 'pg_catalog'::regnamespace`,
		"the database defines its own casts, which the planner may call"},
}

func checkCatalog(ctx context.Context, c *pgconn.PgConn, st statement) error {
	name := quoteIdent(st.table)
	if st.schema != "" {
		name = quoteIdent(st.schema) + "." + name
	}
	r := c.ExecParams(ctx, "SELECT coalesce(to_regclass($1)::oid, 0)", [][]byte{[]byte(name)}, nil, nil, nil).Read()
	if r.Err != nil || len(r.Rows) != 1 || string(r.Rows[0][0]) == "0" {
		return noEstimate("the statement's table was not found")
	}
	args := [][]byte{r.Rows[0][0], textArray(st.funcs), textArray(st.columns), textArray(st.types)}
	oids := []uint32{26, 1009, 1009, 1009} // oid, text[], text[], text[]
	for _, chk := range catalogChecks {
		out := c.ExecParams(ctx, chk.sql, args, oids, nil, nil).Read()
		if out.Err != nil {
			return fmt.Errorf("catalog check: %w", out.Err)
		}
		if len(out.Rows) != 1 || string(out.Rows[0][0]) != "0" {
			return chk.why
		}
	}
	return nil
}

func params(ps []review.Param) (oids []uint32, formats []int16, values [][]byte) {
	for _, p := range ps {
		oids, formats = append(oids, p.Type), append(formats, p.Format)
		if p.Null {
			values = append(values, nil)
		} else {
			values = append(values, p.Value)
		}
	}
	return
}

// planRows reads the rows the statement would change from EXPLAIN's JSON:
// the ModifyTable node's input (its own row count is 0 since PostgreSQL 13).
func planRows(js []byte) (int64, error) {
	type node struct {
		Type  string  `json:"Node Type"`
		Rows  float64 `json:"Plan Rows"`
		Plans []node  `json:"Plans"`
	}
	var out []struct {
		Plan node `json:"Plan"`
	}
	if err := json.Unmarshal(js, &out); err != nil || len(out) != 1 {
		return 0, fmt.Errorf("EXPLAIN's JSON: %v", err)
	}
	n := out[0].Plan
	if n.Type == "ModifyTable" && n.Rows == 0 && len(n.Plans) > 0 {
		n = n.Plans[0]
	}
	return int64(n.Rows), nil
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

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
