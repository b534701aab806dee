package recording

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// The two events of every operation (OperationData, OutcomeData) are
// encoded by hand instead of through encoding/json's reflection: they are
// built for every statement, and reflection was a good part of the
// gateway's cost per statement. The output is byte for byte what
// json.Marshal writes for the same value (field order, omitempty, HTML
// escaping, invalid UTF-8 as \ufffd), because exports and sinks must
// reproduce the hashed bytes: ASCII strings are escaped here as
// encoding/json escapes them, any other string is handed to json.Marshal
// itself, and TestAppendJSONMatchesMarshal, TestAppendJSONEveryASCIIByte
// and FuzzAppendJSON compare the two.

// jsonAppender is event data that appends its own JSON encoding, identical
// to json.Marshal's.
type jsonAppender interface {
	appendJSON(dst []byte) ([]byte, error)
}

var (
	_ jsonAppender = (*OperationData)(nil)
	_ jsonAppender = (*OutcomeData)(nil)
)

func (d *OperationData) appendJSON(b []byte) ([]byte, error) {
	if b == nil {
		n := 320 + len(d.Text) + len(d.Reason) + len(d.SearchPath) + len(d.Role)
		for _, o := range d.Objects {
			n += len(o) + 3
		}
		b = make([]byte, 0, n)
	}
	b = append(b, `{"text":`...)
	b = appendJSONString(b, d.Text)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, d.Kind)
	b = append(b, `,"objects":`...)
	b = appendJSONStrings(b, d.Objects)
	b = append(b, `,"statements":`...)
	b = strconv.AppendInt(b, int64(d.Statements), 10)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, d.Reason)
	b = append(b, `,"params":`...)
	b = strconv.AppendInt(b, int64(d.Params), 10)
	if d.BulkRows != 0 {
		b = append(b, `,"bulk_rows":`...)
		b = strconv.AppendInt(b, int64(d.BulkRows), 10)
	}
	if d.Command != "" {
		b = append(b, `,"command":`...)
		b = appendJSONString(b, d.Command)
	}
	b = append(b, `,"decision":`...)
	b = appendJSONString(b, d.Decision)
	b = append(b, `,"code":`...)
	b = appendJSONString(b, d.Code)
	b = append(b, `,"review_id":`...)
	b = appendJSONString(b, d.ReviewID)
	b = append(b, `,"grant_id":`...)
	b = appendJSONString(b, d.GrantID)
	b = append(b, `,"digest":`...)
	b = appendJSONString(b, d.Digest)
	if d.SearchPath != "" {
		b = append(b, `,"search_path":`...)
		b = appendJSONString(b, d.SearchPath)
	}
	if d.Role != "" {
		b = append(b, `,"role":`...)
		b = appendJSONString(b, d.Role)
	}
	if d.Schema != "" {
		b = append(b, `,"schema":`...)
		b = appendJSONString(b, d.Schema)
	}
	b = append(b, `,"in_transaction":`...)
	b = strconv.AppendBool(b, d.InTransaction)
	if d.Variables != "" {
		b = append(b, `,"variables":`...)
		b = appendJSONString(b, d.Variables)
	}
	if d.Unmasked {
		b = append(b, `,"unmasked":true`...)
	}
	if d.UnmaskGrantID != "" {
		b = append(b, `,"unmask_grant_id":`...)
		b = appendJSONString(b, d.UnmaskGrantID)
	}
	return append(b, '}'), nil
}

func (d *OutcomeData) appendJSON(b []byte) ([]byte, error) {
	if b == nil {
		b = make([]byte, 0, 192+len(d.CommandTag))
	}
	b = append(b, `{"command_tag":`...)
	b = appendJSONString(b, d.CommandTag)
	b = append(b, `,"rows":`...)
	b = strconv.AppendInt(b, d.Rows, 10)
	b = append(b, `,"error_code":`...)
	b = appendJSONString(b, d.ErrorCode)
	b = append(b, `,"committed":`...)
	b = strconv.AppendBool(b, d.Committed)
	b = append(b, `,"rolled_back":`...)
	b = strconv.AppendBool(b, d.RolledBack)
	b = append(b, `,"digest":`...)
	b = appendJSONString(b, d.Digest)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendInt(b, d.DurationMS, 10)
	if d.Results != nil {
		// Kept rows (record.results): rare, and their values are whatever
		// the upstream sent, so encoding/json writes them.
		r, err := json.Marshal(d.Results)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"results":`...)
		b = append(b, r...)
	}
	return append(b, '}'), nil
}

// appendJSONString appends s as encoding/json writes it (with its default
// HTML escaping). ASCII is escaped here exactly as encoding/json does; a
// string with any other byte is left to json.Marshal, which checks its
// UTF-8 and escapes U+2028 and U+2029.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default: // other control characters, and <, > and & (HTML-safe)
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONStrings appends a []string as encoding/json writes it: null
// when nil.
func appendJSONStrings(b []byte, ss []string) []byte {
	if ss == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// isNilAppender reports a typed nil pointer, which json.Marshal writes as
// null: it is left to json.Marshal.
func isNilAppender(a jsonAppender) bool {
	switch d := a.(type) {
	case *OperationData:
		return d == nil
	case *OutcomeData:
		return d == nil
	}
	return false
}
