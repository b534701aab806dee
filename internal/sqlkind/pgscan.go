package sqlkind

import (
	"strings"
	"unicode/utf8"
)

// literalKey returns text with every literal constant replaced by a
// placeholder naming its token type, everything else kept byte for byte.
// Two texts with the same key differ only in the values of literals of the
// same token types, so they parse to the same tree up to those values.
//
// It tokenizes as PostgreSQL's scanner (scan.l) does for everything that
// decides where a literal starts and ends: -- and nested /* */ comments,
// "quoted identifiers", ” strings with ” doubling, E” strings with
// backslash escapes, B” and X” strings, $tag$ dollar quotes $tag$,
// identifiers (which may contain digits and $), $n parameters and numbers.
// Wherever it is not sure it returns ok=false and the caller parses the
// text fully:
//   - anything unterminated, a NUL byte, or text that is not UTF-8;
//   - U&” and U&"" (UESCAPE changes escapes), N” strings;
//   - E” escapes that can fail to decode (\x, \u, \U, octal);
//   - a backslash in a standard string when standard_conforming_strings is off;
//   - a string followed by another quote (PostgreSQL joins 'a'<newline>'b'
//     and an E string's continuation keeps E's escapes);
//   - numbers PostgreSQL 16+ reads differently from older servers (0x, 0o,
//     0b, 1_000) or that run into letters ("trailing junk").
//
// Literals whose value the grammar itself checks stay in the key: the
// precision in float(p) and the number in ALTER ... ALTER COLUMN n. Integers
// that fit in 32 bits are ICONST and others FCONST to PostgreSQL, which
// some rules tell apart, so they get different placeholders.
func literalKey(text string, nonStandard bool) (string, bool) {
	if strings.IndexByte(text, 0) >= 0 || !utf8.ValidString(text) {
		return "", false
	}
	s := scanner{src: text, nonStandard: nonStandard}
	s.out.Grow(len(text))
	for s.i < len(s.src) {
		if !s.token() {
			return "", false
		}
	}
	return s.out.String(), true
}

// Placeholders start with NUL, which cannot occur in the text.
const (
	phInt    = "\x00i"
	phFloat  = "\x00f"
	phString = "\x00s"
	phEStr   = "\x00e"
	phBits   = "\x00b"
	phHex    = "\x00x"
	phDollar = "\x00d"
)

type scanner struct {
	src         string
	i           int
	out         strings.Builder
	nonStandard bool
	// prev and prev2 are the last two significant tokens, lower-cased,
	// for the literals the grammar checks.
	prev, prev2 string
	// nest estimates parse-tree depth; see nesting.
	nest nesting
}

func (s *scanner) token() bool {
	c := s.src[s.i]
	switch {
	case isSpace(c):
		s.out.WriteByte(c)
		s.i++
		return true
	case strings.HasPrefix(s.src[s.i:], "--"):
		return s.lineComment()
	case strings.HasPrefix(s.src[s.i:], "/*"):
		return s.blockComment()
	case c == '\'':
		return s.str(s.i, phString, s.standardEnd)
	case c == '"':
		return s.quotedIdent()
	case c == '$':
		return s.dollar()
	case isDigit(c) || (c == '.' && s.i+1 < len(s.src) && isDigit(s.src[s.i+1])):
		return s.number()
	case isIdentStart(c):
		return s.word()
	}
	s.out.WriteByte(c)
	s.i++
	s.significant(string(c))
	return true
}

func (s *scanner) significant(tok string) {
	s.prev2, s.prev = s.prev, tok
	s.nest.token(tok)
}

// nesting bounds how deep a text's parse tree can be. Within one list item
// every token can add a level (1+1+1+... is left-deep) and brackets add one
// each, but items of a list (between commas) are siblings. Set operations
// and joins chain left-deep across the commas of their operands (SELECT 1,2
// UNION SELECT 1,2 UNION ...), so those keywords are counted per bracket
// level and survive commas. The estimate along the current path is at least
// the tree depth there.
type nesting struct {
	cur, max int
	frames   []frame
	top      frame // the statement level
}

type frame struct {
	restore int // cur when the bracket opened
	chain   int // set operations and joins in this bracket
}

func (n *nesting) frame() *frame {
	if len(n.frames) == 0 {
		return &n.top
	}
	return &n.frames[len(n.frames)-1]
}

func (n *nesting) token(tok string) {
	switch tok {
	case "(", "[":
		n.frames = append(n.frames, frame{restore: n.cur})
		n.cur++
	case ")", "]":
		if len(n.frames) > 0 {
			n.cur = n.frames[len(n.frames)-1].restore + 1
			n.frames = n.frames[:len(n.frames)-1]
		}
	case ",":
		f := n.frame()
		n.cur = f.restore + 1 + f.chain
	case ";":
		if len(n.frames) == 0 {
			n.cur, n.top = 0, frame{}
		}
	case "union", "intersect", "except", "join":
		n.frame().chain++
		n.cur++
	default:
		n.cur++
	}
	n.max = max(n.max, n.cur)
}

// maxNesting is far below the depth at which pg_query's C code overflows its
// stack (a SELECT 1+1+... of 100,000 terms crashes the process; 10,000
// terms is refused by the protobuf decoder without harm).
const maxNesting = 5000

// tooDeep reports whether text may nest deeper than maxNesting, or cannot be
// scanned well enough to tell. A text shorter than maxNesting bytes has
// fewer tokens than that and is never too deep.
func tooDeep(text string, nonStandard bool) bool {
	if len(text) < maxNesting {
		return false
	}
	s := scanner{src: text, nonStandard: nonStandard}
	for s.i < len(s.src) {
		if !s.token() {
			return true
		}
	}
	return s.nest.max > maxNesting
}

func (s *scanner) lineComment() bool {
	end := strings.IndexAny(s.src[s.i:], "\n\r")
	if end < 0 {
		end = len(s.src) - s.i
	}
	s.out.WriteString(s.src[s.i : s.i+end])
	s.i += end
	return true
}

// blockComment copies a /* */ comment; they nest in PostgreSQL.
func (s *scanner) blockComment() bool {
	depth, j := 0, s.i
	for j < len(s.src) {
		switch {
		case strings.HasPrefix(s.src[j:], "/*"):
			depth++
			j += 2
		case strings.HasPrefix(s.src[j:], "*/"):
			depth--
			j += 2
			if depth == 0 {
				s.out.WriteString(s.src[s.i:j])
				s.i = j
				return true
			}
		default:
			j++
		}
	}
	return false
}

func (s *scanner) quotedIdent() bool {
	j := s.i + 1
	for {
		k := strings.IndexByte(s.src[j:], '"')
		if k < 0 {
			return false
		}
		j += k + 1
		if j < len(s.src) && s.src[j] == '"' {
			j++
			continue
		}
		break
	}
	s.out.WriteString(s.src[s.i:j])
	s.significant(s.src[s.i:j])
	s.i = j
	return true
}

// str replaces the string starting with the quote at q (after any prefix
// from start) by ph; end finds the index just past its closing quote.
func (s *scanner) str(start int, ph string, end func(q int) (int, bool)) bool {
	q := start
	for s.src[q] != '\'' {
		q++
	}
	j, ok := end(q)
	if !ok || s.quoteFollows(j) {
		return false
	}
	s.out.WriteString(ph)
	s.significant(ph)
	s.i = j
	return true
}

// standardEnd: ” is a quote inside the string; no backslash escapes, unless
// standard_conforming_strings is off, when the scanner is unsure.
func (s *scanner) standardEnd(q int) (int, bool) {
	j := q + 1
	for j < len(s.src) {
		switch s.src[j] {
		case '\\':
			if s.nonStandard {
				return 0, false
			}
		case '\'':
			if j+1 < len(s.src) && s.src[j+1] == '\'' {
				j += 2
				continue
			}
			return j + 1, true
		}
		j++
	}
	return 0, false
}

// escapeEnd: E” strings take backslash escapes as well as ”. Escapes that
// can fail to decode (hex, octal, Unicode) leave the scanner unsure.
func (s *scanner) escapeEnd(q int) (int, bool) {
	j := q + 1
	for j < len(s.src) {
		switch s.src[j] {
		case '\\':
			if j+1 >= len(s.src) || strings.IndexByte("xuU01234567", s.src[j+1]) >= 0 {
				return 0, false
			}
			j += 2
			continue
		case '\'':
			if j+1 < len(s.src) && s.src[j+1] == '\'' {
				j += 2
				continue
			}
			return j + 1, true
		}
		j++
	}
	return 0, false
}

// plainEnd: B” and X” strings end at the next quote.
func (s *scanner) plainEnd(q int) (int, bool) {
	k := strings.IndexByte(s.src[q+1:], '\'')
	if k < 0 {
		return 0, false
	}
	return q + 1 + k + 1, true
}

// quoteFollows reports whether the next thing after whitespace and comments
// is a quote: PostgreSQL may join it to the string before.
func (s *scanner) quoteFollows(j int) bool {
	for j < len(s.src) {
		switch {
		case isSpace(s.src[j]):
			j++
		case strings.HasPrefix(s.src[j:], "--"):
			k := strings.IndexAny(s.src[j:], "\n\r")
			if k < 0 {
				return false
			}
			j += k
		case strings.HasPrefix(s.src[j:], "/*"):
			// PostgreSQL does not join across /* */, but being unsure is cheap.
			return true
		default:
			return s.src[j] == '\''
		}
	}
	return false
}

// dollar handles $n parameters and $tag$ ... $tag$ strings.
func (s *scanner) dollar() bool {
	j := s.i + 1
	if j < len(s.src) && isDigit(s.src[j]) {
		for j < len(s.src) && isDigit(s.src[j]) {
			j++
		}
		if j < len(s.src) && isIdentCont(s.src[j]) {
			return false // trailing junk after parameter
		}
		s.out.WriteString(s.src[s.i:j])
		s.significant("$n")
		s.i = j
		return true
	}
	if j < len(s.src) && isIdentStart(s.src[j]) {
		for j < len(s.src) && isIdentCont(s.src[j]) && s.src[j] != '$' {
			j++
		}
	}
	if j >= len(s.src) || s.src[j] != '$' {
		return false
	}
	tag := s.src[s.i : j+1]
	k := strings.Index(s.src[j+1:], tag)
	if k < 0 {
		return false
	}
	s.out.WriteString(phDollar)
	s.significant(phDollar)
	s.i = j + 1 + k + len(tag)
	return true
}

// number handles integer and decimal literals, with an exponent.
func (s *scanner) number() bool {
	j := s.i
	if strings.HasPrefix(s.src[j:], "0") && j+1 < len(s.src) && strings.IndexByte("xXoObB", s.src[j+1]) >= 0 {
		return false // 0x1F: PostgreSQL 16+ reads a number, older servers 0 AS x1F
	}
	digits := func() {
		for j < len(s.src) && isDigit(s.src[j]) {
			j++
		}
	}
	digits()
	integer := true
	if j < len(s.src) && s.src[j] == '.' {
		if j+1 < len(s.src) && s.src[j+1] == '.' {
			return false // 1..2
		}
		integer = false
		j++
		digits()
	}
	if j < len(s.src) && (s.src[j] == 'e' || s.src[j] == 'E') {
		integer = false
		j++
		if j < len(s.src) && (s.src[j] == '+' || s.src[j] == '-') {
			j++
		}
		if j >= len(s.src) || !isDigit(s.src[j]) {
			return false
		}
		digits()
	}
	if j < len(s.src) && (isIdentCont(s.src[j]) || s.src[j] == '.') {
		return false // trailing junk, 1_000, 1.2.3
	}
	lit := s.src[s.i:j]
	ph := phFloat
	if integer && fitsInt32(lit) {
		ph = phInt
	}
	if s.prev == "column" || (s.prev == "(" && s.prev2 == "float") {
		ph = lit // the grammar checks this value
	}
	s.out.WriteString(ph)
	s.significant(ph)
	s.i = j
	return true
}

func fitsInt32(digits string) bool {
	digits = strings.TrimLeft(digits, "0")
	return len(digits) < 10 || (len(digits) == 10 && digits <= "2147483647")
}

// word handles identifiers and keywords, and the string prefixes E, B, X,
// N and U& that are written as a letter before a quote.
func (s *scanner) word() bool {
	j := s.i
	for j < len(s.src) && isIdentCont(s.src[j]) {
		j++
	}
	w := s.src[s.i:j]
	if j < len(s.src) && s.src[j] == '\'' && len(w) == 1 {
		switch w[0] {
		case 'e', 'E':
			return s.str(j, phEStr, s.escapeEnd)
		case 'b', 'B':
			return s.str(j, phBits, s.plainEnd)
		case 'x', 'X':
			return s.str(j, phHex, s.plainEnd)
		case 'n', 'N':
			return false
		}
	}
	if (w == "u" || w == "U") && j+1 < len(s.src) && s.src[j] == '&' && (s.src[j+1] == '\'' || s.src[j+1] == '"') {
		return false
	}
	s.out.WriteString(w)
	s.significant(strings.ToLower(w))
	s.i = j
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentCont(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }
