package pgmask

import (
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/mask"
)

// MaskError masks the text fields of an upstream ErrorResponse in place
// before the client (or the recording) sees it; the SQLSTATE and the
// structured names (schema, table, column, constraint) are kept.
//
//   - Every text field (Message, Detail, Hint, Where, InternalQuery and
//     fields pgproto3 does not name) goes through the detectors.
//   - A Detail quoting key values ("Key (email)=(a@b.io) already
//     exists.") has the values masked when any key column is masked for
//     these roles, or when the columns cannot be told (an expression key,
//     no table name); one it cannot take apart is dropped.
//   - A Detail quoting a whole row ("Failing row contains (...)") has the
//     row replaced: it holds every column.
//   - A data exception (SQLSTATE class 22: invalid input syntax, out of
//     range, ...) quotes the offending value, which may come from a masked
//     column (SELECT ssn::int): every quoted part of its Message and
//     Detail is masked, and a Where that quotes JSON input is dropped.
//
// rules nil leaves e untouched (the resource masks nothing, or an unmask
// grant covers the operation).
func MaskError(rules *mask.Rules, roles []string, e *pgproto3.ErrorResponse) {
	if rules == nil || e == nil {
		return
	}
	text := func(s string) string { return string(rules.Text(roles, []byte(s))) }
	e.Detail = maskDetail(rules, roles, e.SchemaName, e.TableName, e.Detail)
	if strings.HasPrefix(e.Code, "22") {
		e.Message = maskQuoted(e.Message)
		e.Detail = maskQuoted(e.Detail)
		if strings.HasPrefix(e.Where, "JSON data") {
			e.Where = ""
		}
	}
	e.Message, e.Detail, e.Hint = text(e.Message), text(e.Detail), text(e.Hint)
	e.Where, e.InternalQuery = text(e.Where), text(e.InternalQuery)
	for k, v := range e.UnknownFields {
		e.UnknownFields[k] = text(v)
	}
}

// MaskNotice is MaskError for a NoticeResponse (RAISE NOTICE, warnings).
func MaskNotice(rules *mask.Rules, roles []string, n *pgproto3.NoticeResponse) {
	MaskError(rules, roles, (*pgproto3.ErrorResponse)(n))
}

// MaskNotification runs the detectors over a NOTIFY payload.
func MaskNotification(rules *mask.Rules, roles []string, n *pgproto3.NotificationResponse) {
	if rules == nil || n == nil {
		return
	}
	n.Payload = string(rules.Text(roles, []byte(n.Payload)))
}

// keyDetailEnds are the texts that may follow the values of a "Key
// (cols)=(values)" detail.
var keyDetailEnds = []string{") already exists.", ") is not present in table ", ") is still referenced from table "}

func maskDetail(rules *mask.Rules, roles []string, schema, table, d string) string {
	switch {
	case strings.HasPrefix(d, "Failing row contains ("):
		return "Failing row contains (" + mask.Redacted + ")."
	case !strings.HasPrefix(d, "Key ("):
		return d
	}
	eq := strings.Index(d, ")=(")
	end := -1
	for _, s := range keyDetailEnds {
		if i := strings.LastIndex(d, s); i > eq {
			end = i
			break
		}
	}
	if eq < 0 || end < 0 {
		return "" // a key detail not understood: drop it rather than guess
	}
	cols := d[len("Key ("):eq]
	if !keyMasked(rules, roles, schema, table, cols) {
		return d
	}
	return d[:eq+3] + mask.Redacted + d[end:]
}

// keyMasked: any key column masked, or the key's columns cannot be told.
func keyMasked(rules *mask.Rules, roles []string, schema, table, cols string) bool {
	if table == "" {
		return true
	}
	for _, c := range strings.Split(cols, ", ") {
		name, ok := plainIdent(c)
		if !ok || rules.Masked(roles, mask.Source{Schema: schema, Table: table, Column: name}) {
			return true
		}
	}
	return false
}

// plainIdent reads a column name as PostgreSQL prints it in a key detail:
// bare lower case, or double-quoted. Anything else (an expression) is not
// a plain column.
func plainIdent(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		inner := s[1 : len(s)-1]
		return strings.ReplaceAll(inner, `""`, `"`), !strings.Contains(strings.ReplaceAll(inner, `""`, ""), `"`)
	}
	if s == "" {
		return "", false
	}
	for _, r := range s {
		if !(r == '_' || r == '$' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r >= 0x80) {
			return "", false
		}
	}
	return s, true
}

// maskQuoted replaces everything from the first double quote of s to the
// last: a value may itself hold quotes, so the quoted parts cannot be told
// apart safely.
func maskQuoted(s string) string {
	first, last := strings.IndexByte(s, '"'), strings.LastIndexByte(s, '"')
	if first < 0 {
		return s
	}
	if first == last {
		return s[:first+1] + mask.Redacted
	}
	return s[:first+1] + mask.Redacted + s[last:]
}
