package sqlkind

import "strings"

// mysqlLiteralKey returns text with each small decimal integer literal
// replaced by a placeholder, everything else kept byte for byte, so that
// "SELECT c FROM t WHERE id = 1" and "... id = 2" share one classification
// (a point select with a new id every time is the commonest statement a
// gateway sees). It is deliberately narrower than PostgreSQL's literalKey:
//
//   - only runs of at most 9 digits (they fit any integer type, so no value
//     can overflow into a different parse) that stand alone: not part of a
//     word (t1, 1abc, 0x1f, $1), and with no '.' or '@' before it or '.'
//     after it, whitespace between or not (1.5, .5, @1, and db. 0, where
//     the 0 names a table), nor the exponent of 1e+5 (exponentAt);
//   - strings, "double-quoted" and `backticked` tokens are copied, never
//     replaced (their values can name files, collations, statements);
//   - any comment, an unterminated quote, a NUL or text that is not UTF-8
//     gives no key (ok=false): the caller classifies the exact text.
//
// The caller caches under this key only analyses whose kind and tracked
// state cannot depend on a literal (mysqlShapeable).
func mysqlLiteralKey(text string) (string, bool) {
	if strings.IndexByte(text, 0) >= 0 {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(text))
	replaced := false
	for i := 0; i < len(text); {
		ch := text[i]
		switch {
		case ch == '\'' || ch == '"' || ch == '`':
			end, ok := quotedEnd(text, i)
			if !ok {
				return "", false
			}
			b.WriteString(text[i:end])
			i = end
		case ch == '#', ch == '/' && i+1 < len(text) && text[i+1] == '*', ch == '-' && i+1 < len(text) && text[i+1] == '-':
			// Comments (and "--" even when it is arithmetic): no key.
			return "", false
		case isWordByte(ch):
			j := i
			digits := true
			for j < len(text) && isWordByte(text[j]) {
				digits = digits && text[j] >= '0' && text[j] <= '9'
				j++
			}
			// Whitespace may stand between a qualifier's dot and its
			// name: in "db. 0" the 0 is a table.
			prev, next := byte(' '), byte(' ')
			for k := i - 1; k >= 0; k-- {
				if text[k] > ' ' {
					prev = text[k]
					break
				}
			}
			for k := j; k < len(text); k++ {
				if text[k] > ' ' {
					next = text[k]
					break
				}
			}
			if digits && j-i <= 9 && prev != '.' && prev != '@' && next != '.' && !exponentAt(text, i) {
				b.WriteString(phMyInt)
				replaced = true
			} else {
				b.WriteString(text[i:j])
			}
			i = j
		default:
			b.WriteByte(ch)
			i++
		}
	}
	return b.String(), replaced
}

// exponentAt reports whether the digits at i may be a number's exponent:
// right after "e+", "e-", "E+" or "E-" (in "1e+5" the lexer reads "1e" as
// a word and "5" as one on its own). Such digits are kept: 1e+1 and
// 1e+123456789 (an overflow the parser refuses) must not share a key. An
// identifier ending in e before an addition ("rate+1") is kept too, which
// costs only a cache miss.
func exponentAt(text string, i int) bool {
	return i >= 2 && (text[i-1] == '+' || text[i-1] == '-') && (text[i-2] == 'e' || text[i-2] == 'E')
}

// phMyInt starts with NUL, which no keyed text contains.
const phMyInt = "\x00n"

// isWordByte: bytes of unquoted identifiers and numbers (MySQL allows any
// non-ASCII character in identifiers).
func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || c >= 0x80
}

// mysqlShapeable reports whether an analysis may be shared by every text of
// its literal key: a read or a write whose statements carry nothing taken
// from a literal's value (settings, PREPARE texts, LOAD DATA files) and no
// session state the engine tracks (USE, PREPARE, EXECUTE, DEALLOCATE).
func mysqlShapeable(a *myAnalysis) bool {
	if a.c.Kind != Read && a.c.Kind != Write || len(a.stmts) == 0 {
		return false
	}
	for _, s := range a.stmts {
		if len(s.Settings) > 0 || s.Prepare != nil || s.Execute != "" || s.Deallocate != "" || s.LoadLocal || s.Use != "" {
			return false
		}
	}
	return true
}

// MySQLLiteralKey is the key under which the classifier shares one
// analysis among texts that differ only in small integer literals
// (mysqlLiteralKey); ok is false when text has no such key. Keys contain a
// NUL byte; a text with one has no key. The engine keys its per-connection
// result lineages with it: a literal of this kind can name no column,
// table or alias, so it cannot change where a result column comes from.
func MySQLLiteralKey(text string) (key string, ok bool) {
	return mysqlLiteralKey(text)
}
