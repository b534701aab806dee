package mysql

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/sqlkind"
)

// MaskFilter returns an Options.Filter that masks the results of every
// allowed operation with its resource's rules (by resource name), for the
// roles of the session's identity. An operation covered by an unmask grant
// (Verdict.Unmask) and a resource without rules pass unfiltered.
//
// Lineage of each result column (DESIGN.md invariant 5):
//
//	the statement names a view (anywhere) ─► every column traced through
//	    the statement's text and the views' stored definitions
//	    (viewlineage.go); what cannot be traced ─► masked whole
//	else org_table and org_name set, a base table ─► that column
//	org_table a derived table or CTE            ─► unresolved: masked whole
//	no org_table (computed)                      ─► the statement's parse
//	    (mylineage.go): an expression over columns of the FROM tables ─►
//	    those columns; SHOW/EXPLAIN ─► detectors only; else masked whole
//	EXECUTE (SQL-level) ─► masked whole: its text is not in the statement
//
// MariaDB's column definitions cannot be trusted for a view's columns: they
// name the view, or the alias it was given in the query, or (for a
// TEMPTABLE view) the base table with the view's column name, and the
// schema may be empty or the base table's. Hence the text is traced.
//
// A column built from one the server fills with session state or
// statement texts (echoColumns), every column of a JSON EXPLAIN and SHOW
// PROCESSLIST's Info are masked whole. A statement that is not traced has
// the names of its columns and tables redacted where its text does not
// hold them (ColumnDefinition: dynamic SQL names them after data).
//
// A masked value of a non-text column is sent as NULL (the binary row's
// NULL bitmap is rebuilt). ERR packet messages and the messages of SHOW
// WARNINGS and SHOW ERRORS have their quoted values redacted
// (redactMessage), then go through the detectors.
func MaskFilter(rules map[string]*mask.Rules) func(s *guard.Session, op *guard.Operation, v guard.Verdict) ResultFilter {
	return func(s *guard.Session, op *guard.Operation, v guard.Verdict) ResultFilter {
		r := rules[s.Resource]
		if r == nil || v.Decision != guard.Allow || v.Unmask {
			return nil
		}
		return &masker{rules: r, roles: guard.RoleNames(s.Identity), op: op}
	}
}

// masker is the ResultFilter of one operation.
type masker struct {
	rules *mask.Rules
	roles []string
	op    *guard.Operation
	views *viewLookup   // nil: no catalog, every relation may be a view
	lin   *lineage      // parsed on the first result set
	lins  *lineageCache // the connection's; nil: parse every time

	cols   []Column
	plan   *mask.Plan
	active bool
	buf    []byte
	// code and message are the columns of a SHOW WARNINGS or SHOW ERRORS
	// result (-1 otherwise): its messages quote values of the statement
	// before, whose text the gateway no longer has.
	code, message int
	// credentials: every quoted string of the result is redacted (SHOW
	// GRANTS, SHOW CREATE USER: IDENTIFIED BY PASSWORD '<hash>'; the
	// upstream's credentials never reach a client, DESIGN.md invariant 6).
	credentials bool
}

func (m *masker) setViews(v *viewLookup) { m.views = v }

func (m *masker) setLineages(c *lineageCache) { m.lins = c }

func (m *masker) lineage() *lineage {
	if m.lin == nil {
		if m.op.Class.Kind == sqlkind.Unknown {
			// Unknown functions (stored functions may read any table) or
			// text the gateway cannot read: nothing computed is traced.
			m.lin = &lineage{derived: map[string]bool{}}
		} else if m.lins != nil {
			m.lin = m.lins.analyze(m.op.Text, m.op.State.Schema)
		} else {
			m.lin = analyzeLineage(m.op.Text, m.op.State.Schema)
		}
	}
	return m.lin
}

// Columns builds the plan of one result set.
func (m *masker) Columns(cols []Column) error {
	m.cols = cols
	mc := m.lineageOf(cols)
	for i, c := range cols {
		mc[i].Name = c.Name
		mc[i].Text = textType(c.Type)
	}
	m.plan = m.rules.Plan(m.roles, mc)
	m.active = m.plan.Active()
	m.code, m.message = -1, -1
	l := m.lineage()
	if l.diagnostics {
		m.code, m.message = columnIndex(cols, "Code"), columnIndex(cols, "Message")
		m.active = m.active || m.message >= 0
	}
	m.credentials = l.credentials
	m.active = m.active || m.credentials
	return nil
}

func columnIndex(cols []Column, name string) int {
	for i, c := range cols {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}

// lineageOf gives each column's lineage (see MaskFilter); a column
// built from one the server fills with what sessions hold or ran
// (echoColumns) is masked whole.
func (m *masker) lineageOf(cols []Column) []mask.Column {
	mc := m.sourcesOf(cols)
	for i := range mc {
		if echoes(mc[i].Sources) || m.lineage().echoMetadata(cols[i].Name) {
			mc[i] = mask.Column{}
		}
	}
	return mc
}

func (m *masker) sourcesOf(cols []Column) []mask.Column {
	l := m.lineage()
	mc := make([]mask.Column, len(cols))
	if !l.parsed || l.elsewhere {
		return mc // unresolved: masked whole
	}
	if !l.metadata && readsView(l.stmt, m.views, m.op.State.Schema, l.derived) {
		if cat := m.views.catalog(); cat != nil {
			if traced := analyzeViews(cat, l.stmt, m.op.State.Schema, len(cols)); traced != nil {
				return traced
			}
		}
		return mc
	}
	isView := func(schema, table string) bool {
		cat := m.views.catalog() // loaded once, only if a column needs it
		return cat == nil || cat.isView(schema, table)
	}
	for i, c := range cols {
		mc[i] = m.column(i, c, isView)
	}
	return mc
}

func (m *masker) column(i int, c Column, isView func(schema, table string) bool) mask.Column {
	if c.OrgTable == "" {
		// Computed: masked whole when built from a masked column, as in
		// the PostgreSQL engine (mask.Rules.Derived).
		return m.rules.Derived(m.roles, m.lineage().computed(i, isView))
	}
	if m.lineage().derived[lower(c.OrgTable)] || isView(c.Schema, c.OrgTable) {
		return mask.Column{}
	}
	return mask.Column{Resolved: true, Sources: []mask.Source{{Schema: c.Schema, Table: c.OrgTable, Column: c.OrgName}}}
}

func (m *masker) Active() bool { return m.active }

// ColumnDefinition hides the names of a result column of a statement the
// gateway does not trace (Unknown: dynamic SQL, a CALL, HANDLER; an
// SQL-level EXECUTE), whose values are all masked whole: a name, alias or
// table that is neither the current schema nor in the statement's text
// may be data. (readColumns parsed p already: it ends the session on a
// definition that does not parse.)
func (m *masker) ColumnDefinition(p []byte) []byte {
	if m.traced() {
		return p
	}
	if out := renameColumn(p, m.shownName, mask.Redacted); out != nil {
		return out
	}
	return p
}

// ColumnName is ColumnDefinition for one name (the recording's copy).
func (m *masker) ColumnName(name string) string {
	if m.traced() || m.shownName(name) {
		return name
	}
	return mask.Redacted
}

// traced reports whether the statement's columns were traced from its
// text (and so are named by it or by the catalog).
func (m *masker) traced() bool {
	l := m.lineage()
	return l.parsed && !l.elsewhere
}

func (m *masker) shownName(s string) bool {
	return s == "" || strings.EqualFold(s, m.op.State.Schema) || inText(s, m.op.Text)
}

// TextRow masks a text-protocol row in place.
func (m *masker) TextRow(vals [][]byte) error {
	for i, v := range vals {
		if v == nil {
			continue
		}
		if view := textView(m.cols[i], v); view != nil {
			// A number whose text hides it from the detectors: they
			// read the view; a masked number is sent as NULL.
			if out, null := m.plan.Value(i, view); null || !bytes.Equal(out, view) {
				vals[i] = nil
			}
			continue
		}
		out, null := m.plan.Value(i, v)
		if null {
			out = nil
		}
		vals[i] = m.exponents(i, v, out)
	}
	if m.message >= 0 && m.message < len(vals) && vals[m.message] != nil {
		var code []byte
		if m.code >= 0 && m.code < len(vals) {
			code = vals[m.code]
		}
		vals[m.message] = m.diagnostic(code, vals[m.message])
	}
	if m.credentials {
		for i, v := range vals {
			vals[i] = redactStrings(v)
		}
	}
	return nil
}

// redactStrings replaces every single-quoted string of v (nil: NULL)
// with the redaction; a quote never closed hides the rest.
func redactStrings(v []byte) []byte {
	if bytes.IndexByte(v, '\'') < 0 {
		return v
	}
	var out []byte
	for {
		open := bytes.IndexByte(v, '\'')
		if open < 0 {
			return append(out, v...)
		}
		out = append(append(out, v[:open+1]...), mask.Redacted...)
		end := bytes.IndexByte(v[open+1:], '\'')
		if end < 0 {
			return append(out, '\'')
		}
		out = append(out, '\'')
		v = v[open+end+2:]
	}
}

// diagnostic masks the message of a SHOW WARNINGS row, as the ERR packet
// of the statement that raised it would have been, but without that
// statement's text: every quoted value goes.
func (m *masker) diagnostic(code, msg []byte) []byte {
	n, _ := strconv.ParseUint(string(code), 10, 16)
	return m.rules.Text(m.roles, redactMessage(uint16(n), msg, "", m.op.State.Schema))
}

// BinaryRow masks a binary-protocol row: changed text values are
// re-encoded, masked values of other types become NULL in the rebuilt
// bitmap.
func (m *masker) BinaryRow(p []byte) ([]byte, error) {
	vals, err := parseBinaryRow(p, m.cols)
	if err != nil {
		return nil, err
	}
	changed := false
	for i := range vals {
		bv := &vals[i]
		if bv.null {
			continue
		}
		c := m.cols[i]
		in := bv.value
		if !textType(c.Type) {
			in = binaryText(c, bv.value)
		}
		out, null := m.plan.Value(i, in)
		if !null && textType(c.Type) {
			out = m.exponents(i, bv.value, out)
		}
		switch {
		case null:
			bv.null, changed = true, true
		case textType(c.Type) && !bytes.Equal(out, bv.value):
			bv.value, bv.raw, changed = out, nil, true
		}
	}
	if i := m.message; i >= 0 && i < len(vals) && !vals[i].null {
		var code []byte
		if j := m.code; j >= 0 && j < len(vals) && !vals[j].null {
			code = binaryText(m.cols[j], vals[j].value)
		}
		if out := m.diagnostic(code, vals[i].value); !bytes.Equal(out, vals[i].value) {
			vals[i].value, vals[i].raw, changed = out, nil, true
		}
	}
	for i := range vals {
		if bv := &vals[i]; m.credentials && !bv.null && textType(m.cols[i].Type) {
			if out := redactStrings(bv.value); !bytes.Equal(out, bv.value) {
				bv.value, bv.raw, changed = out, nil, true
			}
		}
	}
	if !changed {
		return p, nil
	}
	m.buf = appendBinaryRow(m.buf[:0], vals)
	return m.buf, nil
}

// nameErrors are MariaDB errors whose quoted parts are names (of a
// column, a table, a key) or a piece of the statement's text (a syntax
// error's "near '...'"). Their parts are shown when the statement's text
// holds them (shownPart): a name or text built from a value (PREPARE s
// FROM @v, EXECUTE IMMEDIATE) is not there. Every other message may quote
// a value and has its quoted parts redacted.
var nameErrors = map[uint16]bool{
	1048: true, // ER_BAD_NULL_ERROR: Column '%s' cannot be null
	1049: true, // ER_BAD_DB_ERROR: Unknown database '%s'
	1050: true, // ER_TABLE_EXISTS_ERROR
	1051: true, // ER_BAD_TABLE_ERROR: Unknown table '%s'
	1052: true, // ER_NON_UNIQ_ERROR: Column '%s' in %s is ambiguous
	1054: true, // ER_BAD_FIELD_ERROR: Unknown column '%s' in '%s'
	1060: true, // ER_DUP_FIELDNAME
	1061: true, // ER_DUP_KEYNAME
	1064: true, // ER_PARSE_ERROR: ... near '%s' at line %d
	1091: true, // ER_CANT_DROP_FIELD_OR_KEY
	1109: true, // ER_UNKNOWN_TABLE: Unknown table '%s' in %s
	1146: true, // ER_NO_SUCH_TABLE: Table '%s.%s' doesn't exist
	1149: true, // ER_SYNTAX_ERROR
	1264: true, // ER_WARN_DATA_OUT_OF_RANGE: ... for column '%s' at row %lu
	1265: true, // WARN_DATA_TRUNCATED: Data truncated for column '%s' at row %lu
	1364: true, // ER_NO_DEFAULT_FOR_FIELD: Field '%s' doesn't have a default value
	1406: true, // ER_DATA_TOO_LONG: Data too long for column '%s' at row %lu
}

// dataMessages are messages that are data through and through: SIGNAL's
// MESSAGE_TEXT (a procedure or a statement may set it from any column or
// variable), and the note of EXPLAIN EXTENDED, which prints the query
// with the values of const tables (a primary key lookup) in it, strings
// and numbers alike.
var dataMessages = map[uint16]bool{
	1003: true, // ER_YES: the rewritten query
	1642: true, // ER_SIGNAL_WARN
	1643: true, // ER_SIGNAL_NOT_FOUND
	1644: true, // ER_SIGNAL_EXCEPTION
}

// ErrorMessage masks an ERR packet's message (redactMessage), then the
// detectors run over the whole text.
func (m *masker) ErrorMessage(code uint16, msg []byte) []byte {
	return m.rules.Text(m.roles, redactMessage(code, msg, m.op.Text, m.op.State.Schema))
}

// redactMessage hides the values a MariaDB message may quote. Messages
// quote names and values alike ('%s'), and a value can come from any
// column, user variable or expression (Unknown or incorrect time zone:
// '<a column>' from SET time_zone = (SELECT ...)), so quoted parts are
// shown only in nameErrors, each part shownPart. Values are printed raw,
// quotes included, so the pairing of quotes cannot be trusted: unless
// every part is shown, everything from the first opening quote to the
// last closing one (for a duplicate key, to its key name) goes.
func redactMessage(code uint16, msg []byte, text, schema string) []byte {
	if dataMessages[code] {
		return []byte(mask.Redacted)
	}
	first := openingQuote(msg, 0)
	if first < 0 {
		return msg
	}
	if nameErrors[code] && shownParts(msg, first, text, schema) {
		return msg
	}
	end := -1
	for i := first + 1; i < len(msg); i++ {
		if msg[i] == '\'' && (i+1 == len(msg) || !wordByte(msg[i+1])) {
			end = i // the last quote that can close a part
		}
	}
	if code == 1062 || code == 1586 { // Duplicate entry '%s' for key '%s'
		if k := bytes.LastIndex(msg, []byte("' for key '")); k > first {
			end = k
		}
	}
	out := append([]byte(nil), msg[:first+1]...)
	out = append(out, mask.Redacted...)
	if end < 0 { // a quote never closed: the rest is the value
		return append(out, '\'')
	}
	return append(out, msg[end:]...)
}

// openingQuote finds the next quote from i that can open a part: one not
// preceded by a letter or digit (doesn't, can't are words of the message).
func openingQuote(msg []byte, i int) int {
	for ; i < len(msg); i++ {
		if msg[i] == '\'' && (i == 0 || !wordByte(msg[i-1])) {
			return i
		}
	}
	return -1
}

// shownParts reports whether every quoted part of msg from its first
// opening quote is shownPart, each closed by a quote that ends a word, and
// every other quote is inside a word (a contraction of the message).
func shownParts(msg []byte, open int, text, schema string) bool {
	for open >= 0 {
		end := bytes.IndexByte(msg[open+1:], '\'')
		if end < 0 {
			return false
		}
		end += open + 1
		if (end+1 < len(msg) && wordByte(msg[end+1])) || !shownPart(string(msg[open+1:end]), text, schema) {
			return false
		}
		open = openingQuote(msg, end+1)
		stop := open
		if stop < 0 {
			stop = len(msg)
		}
		for i := end + 1; i < stop; i++ {
			if msg[i] == '\'' && (i+1 == len(msg) || !wordByte(msg[i+1])) {
				return false // a quote that closes nothing: the parts are not what they seem
			}
		}
	}
	return true
}

// messagePhrases are the fixed words MariaDB quotes in its messages (the
// clause of an unknown column, a key's name).
var messagePhrases = map[string]bool{
	"field list": true, "select": true, "where clause": true, "on clause": true,
	"order clause": true, "group statement": true, "having clause": true,
	"from clause": true, "in/all/any subquery": true, "primary": true,
	"update": true, "delete": true, "insert": true, "set": true,
	"where": true, "on": true, "order by": true, "group by": true, "having": true, "from": true,
}

// shownPart reports whether a quoted part of a message is safe to show: a
// fixed phrase, text the statement holds as a whole (it is the person's
// own: a name, a literal, the rest of a syntax error), or a qualified name
// each part of which is the current schema or such text.
func shownPart(p, text, schema string) bool {
	if p == "" || messagePhrases[strings.ToLower(p)] || inText(p, text) {
		return true
	}
	parts := strings.Split(p, ".")
	if len(parts) < 2 {
		return false
	}
	for _, part := range parts {
		if !strings.EqualFold(part, schema) && !inText(part, text) {
			return false
		}
	}
	return true
}

// inText reports whether p occurs in text, case-insensitively, not as a
// piece of a longer word (a value "5" is not shown because the text holds
// "t5"). A syntax error's snippet is cut at 80 bytes, perhaps inside a
// word: that long a part needs only start on a word's start.
func inText(p, text string) bool {
	if p == "" || len(p) > len(text) {
		return false
	}
	lt, lp := strings.ToLower(text), strings.ToLower(p)
	for from := 0; ; {
		k := strings.Index(lt[from:], lp)
		if k < 0 {
			return false
		}
		k += from
		end := k + len(lp)
		if (k == 0 || !wordByte(lt[k-1]) || !wordByte(lp[0])) &&
			(end == len(lt) || !wordByte(lt[end]) || !wordByte(lp[len(lp)-1]) || len(lp) >= 80) {
			return true
		}
		from = k + 1
	}
}

func wordByte(b byte) bool {
	return b == '_' || b == '$' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b >= 0x80
}

// echoColumns are columns (schema.table.column, lower-cased) the server
// fills with what sessions hold or ran: user variables (SET @x := (SELECT
// ssn ...) stores a masked value there), statement texts and the queries
// an optimizer trace prints with const tables' values, the rows a lock
// holds, the words of a full-text index, a column's statistics. No rule
// names them, so a value read from one is masked whole.
var echoColumns = map[string]bool{
	"information_schema.user_variables.variable_value":                         true,
	"information_schema.processlist.info":                                      true,
	"information_schema.processlist.info_binary":                               true,
	"information_schema.optimizer_trace.query":                                 true,
	"information_schema.optimizer_trace.trace":                                 true,
	"information_schema.innodb_locks.lock_data":                                true,
	"information_schema.innodb_ft_index_table.word":                            true,
	"information_schema.innodb_ft_index_cache.word":                            true,
	"performance_schema.user_variables_by_thread.variable_value":               true,
	"performance_schema.threads.processlist_info":                              true,
	"performance_schema.events_statements_current.sql_text":                    true,
	"performance_schema.events_statements_history.sql_text":                    true,
	"performance_schema.events_statements_history_long.sql_text":               true,
	"performance_schema.events_statements_current.message_text":                true,
	"performance_schema.events_statements_history.message_text":                true,
	"performance_schema.events_statements_history_long.message_text":           true,
	"performance_schema.prepared_statements_instances.sql_text":                true,
	"performance_schema.events_statements_summary_by_digest.query_sample_text": true,
	"performance_schema.data_locks.lock_data":                                  true,
	"mysql.general_log.argument":                                               true,
	"mysql.slow_log.sql_text":                                                  true,
	"mysql.column_stats.min_value":                                             true,
	"mysql.column_stats.max_value":                                             true,
	"mysql.column_stats.histogram":                                             true,
	"mysql.user.password":                                                      true,
	"mysql.user.authentication_string":                                         true,
	"mysql.global_priv.priv":                                                   true,
	"information_schema.query_cache_info.statement_text":                       true,
	"information_schema.innodb_trx.trx_query":                                  true,
}

// echoes reports whether a value is built from an echoColumns column.
func echoes(srcs []mask.Source) bool {
	for _, s := range srcs {
		if echoColumns[lower(s.Schema+"."+s.Table+"."+s.Column)] {
			return true
		}
	}
	return false
}

// exponents returns out, the masked text value v of column i, or the
// value masked whole when the plan left it as it was but a number in it
// written in exponent form (CONCAT or JSON_OBJECT of a DOUBLE:
// 4.111111111111111e15) is something the detectors find once written out.
func (m *masker) exponents(i int, v, out []byte) []byte {
	if out == nil || !bytes.Equal(out, v) || !textType(m.cols[i].Type) {
		return out
	}
	ex := exponentForms(v)
	if ex == nil {
		return out
	}
	if found, null := m.plan.Value(i, ex); null || !bytes.Equal(found, ex) {
		return []byte(mask.Redacted)
	}
	return out
}

// exponentForms writes every number of v in exponent form (1.5e15,
// 1.5e+15) without its exponent, a line each; nil when there is none.
func exponentForms(v []byte) []byte {
	var out []byte
	for i := 1; i+1 < len(v); i++ {
		if (v[i] != 'e' && v[i] != 'E') || !isDigit(v[i-1]) {
			continue
		}
		end := i + 1
		if v[end] == '+' {
			end++
		}
		digits := end
		for end < len(v) && isDigit(v[end]) {
			end++
		}
		if end == digits {
			continue
		}
		start := i
		for start > 0 && (isDigit(v[start-1]) || v[start-1] == '.') {
			start--
		}
		if f, err := strconv.ParseFloat(string(v[start:end]), 64); err == nil {
			out = append(strconv.AppendFloat(out, f, 'f', -1, 64), '\n')
		}
		i = end - 1
	}
	return out
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// textView is what the detectors read of a text-protocol value that hides
// a number from them: a DOUBLE or FLOAT in exponent form
// (4.111111111111111e+15, a card number) written out, a BIT as the number
// its bytes make. nil: the value as it is.
func textView(c Column, v []byte) []byte {
	switch c.Type {
	case 0x04, 0x05: // FLOAT, DOUBLE
		if !bytes.ContainsAny(v, "eE") {
			return nil
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil
		}
		return strconv.AppendFloat(nil, f, 'f', -1, 64)
	case 0x10: // BIT: the same bytes in both protocols
		return binaryText(c, v)
	}
	return nil
}

// textType reports whether a column type carries text a masked value can
// be written into.
func textType(t byte) bool {
	switch t {
	case 0x0f, 0xfd, 0xfe, 0xf9, 0xfa, 0xfb, 0xfc, 0xf5, 0xf7, 0xf8: // VARCHAR, VAR_STRING, STRING, BLOBs, JSON, ENUM, SET
		return true
	}
	return false
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
