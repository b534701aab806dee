package sqlkind

import (
	"fmt"
	"strings"

	pg "github.com/pganalyze/pg_query_go/v6"
)

// Statement is one statement of a PostgreSQL text, with what the engine must
// track per connection. Its Classification is shared through the cache:
// treat every field as read-only.
type Statement struct {
	Classification
	// Prepare is the name a SQL-level PREPARE defines; Classification is then
	// the prepared statement's kind, which EXECUTE of it later runs.
	Prepare string
	// Execute is the name a SQL-level EXECUTE runs. Classify leaves such a
	// statement Unknown; ClassifyWithPrepared looks the name up.
	Execute string
	// Deallocate is the name DEALLOCATE drops; DeallocateAll is DEALLOCATE ALL
	// (and DISCARD ALL).
	Deallocate    string
	DeallocateAll bool
	// Set is the setting a SET or RESET changes, nil otherwise.
	Set *Setting
}

// Setting is a session setting a statement changes.
type Setting struct {
	// Name is the setting's name, lower case ("search_path").
	Name string
	// Value is the new value as PostgreSQL would show it, items joined with
	// ", "; empty for RESET and SET ... TO DEFAULT (Reset is then true).
	Value string
	Reset bool
	// Local is SET LOCAL: the value lasts until the transaction ends.
	Local bool
}

// stmtResult is a Statement plus what the cache must know about it.
type stmtResult struct {
	Statement
	// literalSensitive is set when the kind was decided by a literal's value
	// (SET values, EXPLAIN (ANALYZE 'off')): such a text must not share a
	// literal-insensitive cache key with others.
	literalSensitive bool
}

func (p *PostgresClassifier) classifyStmt(raw *pg.RawStmt) stmtResult {
	var r stmtResult
	var w pgWalk
	r.Kind, r.Reason = p.stmtKind(raw.Stmt, &r, &w)
	r.Statements = 1
	if c := raw.Stmt.GetCopyStmt(); c != nil && c.IsFrom && c.Filename == "" && !c.IsProgram {
		r.CopyIn = true
	}
	r.Objects = sortedUnique(w.objects)
	r.Functions = sortedUnique(w.functions)
	r.Operators = sortedUnique(w.operators)
	r.Types = sortedUnique(w.types)
	r.attrs = sortedUnique(w.attrs)
	p.settleFunctions(&r.Classification)
	return r
}

// settleFunctions applies the static function rules: a function that writes
// makes the statement a write; one not on an allow-list leaves it Unknown
// until Resolve finds it safe in the catalog (pending keeps the kind it
// will have then).
func (p *PostgresClassifier) settleFunctions(c *Classification) {
	if c.Kind == Unknown {
		c.pending = Unknown
		return
	}
	var unresolved []string
	for _, f := range c.Functions {
		name, builtin := builtinName(f)
		switch {
		case builtin && writeFuncs[name]:
			if c.Kind == Read {
				c.Reason = fmt.Sprintf("calls %s(), which changes state", f)
			}
			c.Kind = Max(c.Kind, Write)
		case builtin && readFuncs[name], p.allowFuncs[f]:
		default:
			unresolved = append(unresolved, f)
		}
	}
	for _, t := range c.Types {
		name, builtin := builtinName(t)
		if !builtin || !safeTypes[name] {
			unresolved = append(unresolved, "cast to "+t)
		}
	}
	for _, o := range c.Operators {
		if strings.Contains(o, ".") && !strings.HasPrefix(o, "pg_catalog.") {
			unresolved = append(unresolved, "operator "+o)
		}
	}
	c.pending = c.Kind
	if len(unresolved) > 0 {
		c.Kind = Unknown
		c.Reason = "uses " + strings.Join(unresolved, ", ") +
			", which must be checked in the upstream catalog (Resolve) before it counts as " + c.pending.String()
	}
}

// stmtKind decides one statement's kind from its top node, walking the parts
// that run. It returns the kind and, where not obvious, why.
func (p *PostgresClassifier) stmtKind(n *pg.Node, r *stmtResult, w *pgWalk) (Kind, string) {
	switch x := n.GetNode().(type) {
	case *pg.Node_SelectStmt:
		w.node(n)
		if x.SelectStmt.IntoClause != nil {
			return Schema, "SELECT ... INTO creates a table"
		}
		if w.writes {
			return Write, "contains a data-modifying statement or FOR UPDATE/SHARE"
		}
		return Read, ""
	case *pg.Node_InsertStmt, *pg.Node_UpdateStmt, *pg.Node_DeleteStmt, *pg.Node_MergeStmt:
		w.node(n)
		return Write, ""
	case *pg.Node_ExplainStmt:
		return p.explainKind(x.ExplainStmt, r, w)
	case *pg.Node_CopyStmt:
		// The parse tree cannot tell COPY t TO '' (a file) from TO STDOUT:
		// both have an empty file name. Keep COPY out of the literal key.
		r.literalSensitive = true
		return p.copyKind(x.CopyStmt, w)
	case *pg.Node_VariableSetStmt:
		r.literalSensitive = true
		return p.setKind(x.VariableSetStmt, r)
	case *pg.Node_PrepareStmt:
		return p.prepareKind(x.PrepareStmt, r, w)
	case *pg.Node_ExecuteStmt:
		r.Execute = x.ExecuteStmt.Name
		w.node(n) // the parameters may call functions
		return Unknown, fmt.Sprintf("EXECUTE %s runs a prepared statement that is not known here", x.ExecuteStmt.Name)
	case *pg.Node_DeallocateStmt:
		r.Deallocate, r.DeallocateAll = x.DeallocateStmt.Name, x.DeallocateStmt.Isall
		return Read, ""
	case *pg.Node_DeclareCursorStmt:
		w.node(x.DeclareCursorStmt.Query)
		return queryKind(w), ""
	case *pg.Node_CreateTableAsStmt:
		w.node(n)
		return Schema, "creates a table from a query"
	case *pg.Node_TransactionStmt:
		return transactionKind(x.TransactionStmt)
	case *pg.Node_DiscardStmt:
		return discardKind(x.DiscardStmt, r)
	case *pg.Node_AlterTableStmt:
		w.objectsOf(n)
		return alterTableKind(x.AlterTableStmt)
	case *pg.Node_CallStmt:
		w.node(n)
		return Unknown, "CALL runs a procedure, which may do anything"
	case *pg.Node_DoStmt:
		return Unknown, "DO runs an anonymous code block, which may do anything"
	case *pg.Node_LoadStmt:
		return Unknown, "LOAD loads a shared library into the server"
	}
	return utilityKind(n, w)
}

// queryKind is the kind of a walked query that is not itself a utility.
func queryKind(w *pgWalk) Kind {
	if w.writes {
		return Write
	}
	return Read
}

// explainKind: plain EXPLAIN plans but runs nothing (the planner only folds
// immutable functions, which are still checked below), so it is a read;
// EXPLAIN ANALYZE runs the statement and takes its kind.
//
// EXPLAIN EXECUTE p, with or without ANALYZE, is classified as EXECUTE p:
// planning p folds its immutable calls and evaluates its parameters, and p
// may have been prepared (by Parse) without any decision.
func (p *PostgresClassifier) explainKind(e *pg.ExplainStmt, r *stmtResult, w *pgWalk) (Kind, string) {
	if x := e.Query.GetExecuteStmt(); x != nil {
		r.Execute = x.Name
		w.node(e.Query)
		return Unknown, fmt.Sprintf("EXPLAIN EXECUTE %s plans a prepared statement that is not known here", x.Name)
	}
	analyze := false
	for _, o := range e.Options {
		d := o.GetDefElem()
		if d == nil || d.Defname != "analyze" {
			continue
		}
		r.literalSensitive = true
		analyze = !defFalse(d.Arg)
	}
	if !analyze {
		w.node(e.Query)
		return Read, ""
	}
	var inner stmtResult
	k, reason := p.stmtKind(e.Query, &inner, w)
	r.literalSensitive = r.literalSensitive || inner.literalSensitive
	if reason == "" {
		reason = "EXPLAIN ANALYZE runs the statement"
	}
	return k, reason
}

// defFalse reports whether a boolean option's value is clearly false, as
// PostgreSQL's defGetBoolean reads it. Anything else counts as true, the
// more dangerous reading.
func defFalse(arg *pg.Node) bool {
	switch {
	case arg == nil:
		return false
	case arg.GetBoolean() != nil:
		return !arg.GetBoolean().Boolval
	case arg.GetInteger() != nil:
		return arg.GetInteger().Ival == 0
	case arg.GetString_() != nil:
		switch strings.ToLower(arg.GetString_().Sval) {
		case "false", "off", "0", "f", "fa", "fal", "fals", "of", "n", "no":
			return true
		}
	case arg.GetAConst() != nil:
		return defFalse(constNode(arg.GetAConst()))
	}
	return false
}

func constNode(c *pg.A_Const) *pg.Node {
	switch {
	case c.GetBoolval() != nil:
		return &pg.Node{Node: &pg.Node_Boolean{Boolean: c.GetBoolval()}}
	case c.GetIval() != nil:
		return &pg.Node{Node: &pg.Node_Integer{Integer: c.GetIval()}}
	case c.GetSval() != nil:
		return &pg.Node{Node: &pg.Node_String_{String_: c.GetSval()}}
	}
	return nil
}

// copyKind: COPY FROM writes the table; COPY TO reads (COPY (query) TO takes
// the query's kind). A server file or program runs outside the database's
// own rules, so it is Unknown.
func (p *PostgresClassifier) copyKind(c *pg.CopyStmt, w *pgWalk) (Kind, string) {
	if c.IsProgram {
		return Unknown, "COPY ... PROGRAM runs a shell command on the database server"
	}
	if c.Filename != "" {
		return Unknown, "COPY with a file name reads or writes a file on the database server"
	}
	if c.Relation != nil {
		w.rangeVar(c.Relation)
	}
	w.node(c.WhereClause)
	if c.IsFrom {
		return Write, "COPY ... FROM writes rows whose data is not known when it is decided"
	}
	if c.Query != nil {
		var inner stmtResult
		return p.stmtKind(c.Query, &inner, w)
	}
	return Read, ""
}

func (p *PostgresClassifier) prepareKind(ps *pg.PrepareStmt, r *stmtResult, w *pgWalk) (Kind, string) {
	r.Prepare = ps.Name
	for _, t := range ps.Argtypes {
		// EXECUTE converts its arguments into these types.
		w.node(t)
	}
	var inner stmtResult
	k, reason := p.stmtKind(ps.Query, &inner, w)
	r.literalSensitive = inner.literalSensitive
	if reason == "" {
		reason = "PREPARE takes the kind of the statement it prepares"
	}
	return k, reason
}

func transactionKind(t *pg.TransactionStmt) (Kind, string) {
	switch t.Kind {
	case pg.TransactionStmtKind_TRANS_STMT_PREPARE,
		pg.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED,
		pg.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return Write, "two-phase commit keeps or ends a transaction beyond this session"
	}
	return Read, ""
}

func discardKind(d *pg.DiscardStmt, r *stmtResult) (Kind, string) {
	switch d.Target {
	case pg.DiscardMode_DISCARD_ALL:
		r.DeallocateAll = true
		return Privilege, "DISCARD ALL resets the session's role and settings"
	case pg.DiscardMode_DISCARD_TEMP:
		return Write, "DISCARD TEMP drops the session's temporary tables"
	}
	return Read, ""
}

// alterTableKind: owner and row-security changes decide who sees what, so
// they are privilege changes; the rest is schema.
func alterTableKind(a *pg.AlterTableStmt) (Kind, string) {
	for _, c := range a.Cmds {
		switch c.GetAlterTableCmd().GetSubtype() {
		case pg.AlterTableType_AT_ChangeOwner, pg.AlterTableType_AT_EnableRowSecurity,
			pg.AlterTableType_AT_DisableRowSecurity, pg.AlterTableType_AT_ForceRowSecurity,
			pg.AlterTableType_AT_NoForceRowSecurity:
			return Privilege, "changes a table's owner or row security"
		}
	}
	return Schema, ""
}
