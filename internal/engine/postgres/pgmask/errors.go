package pgmask

import (
	"bytes"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/mask"
)

// MaskError masks the text fields of an upstream ErrorResponse in place
// before the client (or the recording) sees it; the SQLSTATE and the
// structured names (schema, table, column, constraint) are kept.
//
//   - Every text field (Message, Detail, Hint, Where, InternalQuery and
//     fields pgproto3 does not name) goes through the detectors; one whose
//     decoded parts match (a bytea's hex, a float's exponent form) is
//     masked whole.
//   - A Detail quoting key values ("Key (email)=(a@b.io) already
//     exists.") has the values masked when any key column (or, through
//     MaskMessage, its partitioned table's or the column a generated one
//     is computed from) is masked for these roles, or when the columns
//     cannot be told (an expression key, no table name); one it cannot
//     take apart is dropped. A key "still referenced from table" is a
//     stored row's, of another table than the error names: always masked.
//   - A Detail quoting a whole row ("Failing row contains (...)") has the
//     row replaced: it holds every column; so has one quoting a row's
//     partition key ("Partition key of the failing row contains (...) =
//     (...)").
//   - A data exception (SQLSTATE class 22: invalid input syntax, out of
//     range, ...) quotes the offending value, which may come from a masked
//     column (SELECT ssn::int): every quoted part of its Message and
//     Detail is masked, and a Where that quotes JSON input is dropped.
//
// rules nil leaves e untouched (the resource masks nothing, or an unmask
// grant covers the operation).
func MaskError(rules *mask.Rules, roles []string, e *pgproto3.ErrorResponse) {
	maskError(rules, roles, e, msgContext{})
}

// msgContext is what MaskMessage knows beyond the rules: whether the
// session runs an operation that reads masked data (quoted), and how to
// find the columns a key column stands for (expand: its partition's
// ancestors, what a generated column is computed from; ok false when
// that cannot be told). The zero value knows neither.
type msgContext struct {
	quoted bool
	expand func(mask.Source) (srcs []mask.Source, ok bool)
}

// maskError is MaskError; quoted also masks every quoted part of the
// Message, Detail, Hint and Where, whatever the SQLSTATE, and the Detail
// and what follows the Message's first ": " of a data exception: the error
// of an operation that reads a masked column may quote its value as a name
// (relation "219-09-9999" does not exist, from ssn::regclass) or echo it
// (date field value out of range: 219-09-9999, from make_date).
func maskError(rules *mask.Rules, roles []string, e *pgproto3.ErrorResponse, mc msgContext) {
	if rules == nil || e == nil {
		return
	}
	text := func(s string) string { return maskText(rules, roles, s) }
	e.Detail = maskDetail(rules, roles, e.SchemaName, e.TableName, e.Detail, mc.expand)
	if strings.HasPrefix(e.Code, "22") {
		e.Message = maskQuoted(e.Message)
		e.Detail = maskQuoted(e.Detail)
		if strings.HasPrefix(e.Where, "JSON data") {
			e.Where = ""
		}
	}
	if mc.quoted {
		e.Message, e.Detail = maskQuoted(e.Message), maskQuoted(e.Detail)
		e.Hint, e.Where = maskQuoted(e.Hint), maskQuoted(e.Where)
		if strings.HasPrefix(e.Code, "22") {
			// A data exception can echo the value without quotes (date
			// field value out of range: 219-09-9999) and xml's quote the
			// document in their Detail.
			e.Message = maskAfterColon(e.Message)
			if e.Detail != "" {
				e.Detail = mask.Redacted
			}
		}
	}
	e.Message, e.Detail, e.Hint = text(e.Message), text(e.Detail), text(e.Hint)
	e.Where, e.InternalQuery = text(e.Where), text(e.InternalQuery)
	for k, v := range e.UnknownFields {
		e.UnknownFields[k] = text(v)
	}
}

// maskText runs the detectors over a message text, and over what the text
// holds decoded (a bytea's hex, a float's exponent form: RAISE '%', b):
// a match there masks the whole text.
func maskText(rules *mask.Rules, roles []string, s string) string {
	out := rules.Text(roles, []byte(s))
	if ex := textExtras(out); ex != nil && !bytes.Equal(rules.Text(roles, ex), ex) {
		return mask.Redacted
	}
	return string(out)
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
	n.Payload = maskText(rules, roles, n.Payload)
}

// partitionDetail begins the Detail of a row no partition takes: it
// quotes the row's partition key.
const partitionDetail = "Partition key of the failing row contains ("

// keyDetailEnds are the texts that may follow the values of a "Key
// (cols)=(values)" detail.
var keyDetailEnds = []string{") already exists.", ") is not present in table ", stillReferenced}

const stillReferenced = ") is still referenced from table "

func maskDetail(rules *mask.Rules, roles []string, schema, table, d string, expand func(mask.Source) ([]mask.Source, bool)) string {
	switch {
	case strings.HasPrefix(d, "Failing row contains ("):
		return "Failing row contains (" + mask.Redacted + ")."
	case strings.HasPrefix(d, partitionDetail):
		// The row's partition key values, whatever columns they are of.
		if i := strings.Index(d, ") = ("); i > 0 {
			return d[:i+len(") = (")] + mask.Redacted + ")."
		}
		return ""
	case !strings.HasPrefix(d, "Key ("):
		return d
	}
	eq := strings.Index(d, ")=(")
	end, referenced := -1, false
	for _, s := range keyDetailEnds {
		if i := strings.LastIndex(d, s); i > eq {
			end, referenced = i, s == stillReferenced
			break
		}
	}
	if eq < 0 || end < 0 {
		return "" // a key detail not understood: drop it rather than guess
	}
	cols := d[len("Key ("):eq]
	// A key still referenced is a stored row's, of the table the Message
	// names (the error's table is the referencing one): always masked.
	if !referenced && !keyMasked(rules, roles, schema, table, cols, expand) {
		return d
	}
	return d[:eq+3] + mask.Redacted + d[end:]
}

// keyMasked: any key column masked, or the key's columns cannot be told.
// A key of a partition is its partitioned table's too (deleting a row
// of parted_1 that another table references quotes the key of parted's
// row), and a generated column's is the columns it is computed from.
func keyMasked(rules *mask.Rules, roles []string, schema, table, cols string, expand func(mask.Source) ([]mask.Source, bool)) bool {
	if table == "" {
		return true
	}
	for _, c := range strings.Split(cols, ", ") {
		name, ok := plainIdent(c)
		if !ok {
			return true
		}
		srcs := []mask.Source{{Schema: schema, Table: table, Column: name}}
		if expand != nil {
			if srcs, ok = expand(srcs[0]); !ok {
				return true
			}
		}
		for _, src := range srcs {
			if rules.Masked(roles, src) {
				return true
			}
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

// maskAfterColon replaces what follows the first ": " of s.
func maskAfterColon(s string) string {
	if i := strings.Index(s, ": "); i >= 0 {
		return s[:i+2] + mask.Redacted
	}
	return s
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
