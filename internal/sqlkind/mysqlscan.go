package sqlkind

import (
	"fmt"
	"sort"
	"strings"
)

// MySQL runs what is inside an executable comment: /*! ... */ always,
// /*!50700 ... */ when the server's version is at least 5.7.0, and
// MariaDB's /*M!100100 ... */ when a MariaDB server is at least 10.1.0.
// TiDB's lexer reads /*! as code whatever the version and /*M! as a plain
// comment, so neither can be left to it. mysqlVariants removes every
// comment itself and writes out each text the server could run: one per
// combination of the versioned comments (the comments of one version run
// together, or not at all). The statement is as dangerous as its most
// dangerous variant, whatever the upstream's version.

// maxVersionGroups bounds the variants (2^n parses).
const maxVersionGroups = 3

type execComment struct {
	start, end int // the whole comment, text[start:end]
	bodyStart  int // after the marker and version digits
	bodyEnd    int // before the closing */
	group      string
	alwaysRuns bool
}

// mysqlVariants returns the texts to parse, free of comments, or a reason
// the text cannot be read safely.
func mysqlVariants(text string) ([]string, string) {
	plain, comments, why := scanMySQL(text)
	if why != "" {
		return nil, why
	}
	if len(comments) == 0 {
		return []string{plain}, ""
	}
	groups := map[string]int{}
	var names []string
	for _, c := range comments {
		if c.alwaysRuns {
			continue
		}
		if _, ok := groups[c.group]; !ok {
			groups[c.group] = 0
			names = append(names, c.group)
		}
	}
	if len(names) > maxVersionGroups {
		return nil, fmt.Sprintf("the text has executable comments of %d different versions; the gateway reads at most %d", len(names), maxVersionGroups)
	}
	sort.Strings(names)
	for i, n := range names {
		groups[n] = i
	}
	out := make([]string, 0, 1<<len(names))
	for mask := 0; mask < 1<<len(names); mask++ {
		out = append(out, renderVariant(text, comments, groups, mask))
	}
	return out, ""
}

// renderVariant writes text with plain comments as spaces and each
// executable comment either opened (its body kept) or dropped.
func renderVariant(text string, comments []execComment, groups map[string]int, mask int) string {
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, c := range comments {
		b.WriteString(text[last:c.start])
		b.WriteByte(' ')
		if c.alwaysRuns || mask&(1<<groups[c.group]) != 0 {
			b.WriteString(text[c.bodyStart:c.bodyEnd])
			b.WriteByte(' ')
		}
		last = c.end
	}
	b.WriteString(text[last:])
	return stripPlainComments(b.String())
}

// stripPlainComments replaces the plain comments of a text that has no
// executable ones left with spaces.
func stripPlainComments(s string) string {
	plain, _, _ := scanMySQL(s)
	return plain
}

// scanMySQL walks text as MySQL's lexer does (strings with backslash
// escapes and doubled quotes, backtick identifiers, #, "-- " and /* */
// comments) and returns the text with plain comments replaced by spaces
// and the executable comments it found. It refuses (a reason) what it
// cannot read the way the server would: an unterminated string or comment,
// and an executable comment whose end the server could find elsewhere.
func scanMySQL(text string) (string, []execComment, string) {
	var b strings.Builder
	b.Grow(len(text))
	var comments []execComment
	i := 0
	for i < len(text) {
		ch := text[i]
		switch {
		case ch == '\'' || ch == '"' || ch == '`':
			end, ok := quotedEnd(text, i)
			if !ok {
				return "", nil, "the text has an unterminated quoted string or identifier"
			}
			b.WriteString(text[i:end])
			i = end
		case ch == '#' || (ch == '-' && isDashComment(text, i)):
			end := strings.IndexByte(text[i:], '\n')
			if end < 0 {
				end = len(text) - i
			}
			b.WriteByte(' ')
			i += end
		case ch == '/' && i+1 < len(text) && text[i+1] == '*':
			c, plain, why := readComment(text, i)
			if why != "" {
				return "", nil, why
			}
			if !plain {
				comments = append(comments, c)
			}
			b.WriteByte(' ')
			i = c.end
		default:
			b.WriteByte(ch)
			i++
		}
	}
	return b.String(), comments, ""
}

// isDashComment: "--" starts a comment only when followed by whitespace, a
// control character (DEL, 0x7f, is one to MariaDB's lexer) or the end of
// the text; "1--1" is arithmetic.
func isDashComment(text string, i int) bool {
	if i+1 >= len(text) || text[i+1] != '-' {
		return false
	}
	return i+2 >= len(text) || text[i+2] <= ' ' || text[i+2] == 0x7f
}

// quotedEnd returns the index after the quoted token starting at i.
// Backslash escapes apply in strings, not in backtick identifiers (the
// gateway refuses NO_BACKSLASH_ESCAPES and ANSI_QUOTES, so these rules
// are the session's).
func quotedEnd(text string, i int) (int, bool) {
	q := text[i]
	for j := i + 1; j < len(text); j++ {
		switch text[j] {
		case '\\':
			if q != '`' {
				j++
			}
		case q:
			if j+1 < len(text) && text[j+1] == q {
				j++
				continue
			}
			return j + 1, true
		}
	}
	return 0, false
}

// readComment reads the /* comment at i. plain is true for a comment the
// server ignores (optimizer hints /*+ included: they cannot add a
// statement).
func readComment(text string, i int) (execComment, bool, string) {
	rawEnd := strings.Index(text[i+2:], "*/")
	if rawEnd < 0 {
		return execComment{}, false, "the text has an unterminated /* comment"
	}
	rawEnd += i + 2
	c := execComment{start: i, end: rawEnd + 2, bodyEnd: rawEnd}
	rest := text[i+2:]
	var marker string
	switch {
	case strings.HasPrefix(rest, "!"):
		marker = "!"
	case strings.HasPrefix(rest, "M!"):
		marker = "M!"
	default:
		return c, true, ""
	}
	p := i + 2 + len(marker)
	d := p
	for d < len(text) && d < rawEnd && text[d] >= '0' && text[d] <= '9' {
		d++
	}
	switch n := d - p; {
	case n == 0 && marker == "!":
		c.alwaysRuns = true
	case n == 5, n == 6 && marker == "M!":
		c.group = marker + text[p:d]
	default:
		return c, false, fmt.Sprintf("the executable comment /*%s has a version of %d digits; /*! takes 5 and /*M! 5 or 6, anything else is read differently by MySQL and MariaDB", marker, n)
	}
	c.bodyStart = d
	body := text[d:rawEnd]
	if why := checkCommentBody(body); why != "" {
		return c, false, why
	}
	return c, false, ""
}

// checkCommentBody refuses an executable comment the server could end
// somewhere else than the gateway: a skipped comment ends at the first */
// whatever it is inside, a run one at the first */ outside a string.
// Quotes must therefore close inside the body, and comment markers inside
// it are refused (the server's handling of nested comments differs between
// versions).
func checkCommentBody(body string) string {
	for i := 0; i < len(body); i++ {
		switch ch := body[i]; {
		case ch == '\'' || ch == '"' || ch == '`':
			end, ok := quotedEnd(body, i)
			if !ok {
				return "an executable comment contains a quoted string that runs past the comment's end"
			}
			i = end - 1
		case ch == '#', ch == '/' && i+1 < len(body) && body[i+1] == '*', ch == '-' && isDashComment(body, i):
			return "an executable comment contains another comment; the gateway cannot be sure where the server ends it"
		}
	}
	return ""
}
