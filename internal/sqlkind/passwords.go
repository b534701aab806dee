package sqlkind

import (
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Statements that set a password carry it as a literal (CREATE ROLE ...
// PASSWORD '...', CREATE USER ... IDENTIFIED BY '...'). No content detector
// knows a password when it sees one, so the copies of a statement made for
// people (the recording, the review an approver reads, webhooks) have those
// literals replaced by MaskPasswords. The text that runs, and the digest
// over it (invariant 4), are never masked.
//
// A literal is located by token (PostgreSQL's own scanner through
// pg_query; for MySQL the lexer rules scanMySQL follows), then the real
// parser checks the masked text: if it still parses to a password that is
// not the mask, or does not parse, the text is cut after the first
// PASSWORD / IDENTIFIED word (fail closed).

// PasswordMask replaces each password literal. It is itself a string
// literal, so the masked statement still reads (and parses) as SQL.
const PasswordMask = "'" + passwordMaskValue + "'"

const passwordMaskValue = "********"

// withheld ends a text cut because a password could not be located in it.
const withheld = " ******** (the rest is withheld: it may hold a password the gateway could not locate)"

// MaskPasswords returns text with the password literals it carries
// replaced by PasswordMask. An empty dialect (a text whose dialect the
// caller does not know) applies the rules of both. Text with no PASSWORD or
// IDENTIFIED word is returned as is without being parsed.
func MaskPasswords(d Dialect, text string) string {
	if !MayCarryPassword(text) {
		return text
	}
	switch d {
	case Postgres:
		return maskOneDialect(text, maskPGTokens, verifyPG)
	case MySQL:
		return maskOneDialect(text, maskMySQLTokens, verifyMySQL)
	}
	out, pgOK := maskPGTokens(text)
	if !pgOK {
		out = text
	}
	my, myOK := maskMySQLTokens(out)
	if myOK {
		out = my
	}
	if !pgOK && !myOK {
		return cutAtPassword(text)
	}
	// The text is one dialect's; masked by both rule sets, it is clean if
	// either parser reads it and finds no password left.
	if parsed, clean := verifyPG(out); parsed && clean {
		return out
	}
	if parsed, clean := verifyMySQL(out); parsed && clean {
		return out
	}
	return cutAtPassword(text)
}

// maskOneDialect masks by tokens, then has the parser check the result.
func maskOneDialect(text string, tokens func(string) (string, bool), verify func(string) (parsed, clean bool)) string {
	out, ok := tokens(text)
	if !ok {
		return cutAtPassword(text)
	}
	if parsed, clean := verify(out); !parsed || !clean {
		return cutAtPassword(text)
	}
	return out
}

// MayCarryPassword is MaskPasswords' quick test: false means the text holds
// no password literal MaskPasswords would find. It looks for the words
// PASSWORD and IDENTIFIED in any case, and for U& (a PostgreSQL identifier
// with Unicode escapes can spell "password" in an OPTIONS list).
func MayCarryPassword[T string | []byte](text T) bool {
	// One pass: it runs on every recorded event.
	for i := 0; i < len(text); i++ {
		switch text[i] | 0x20 {
		case 'p':
			if hasPrefixFold(text[i:], "password") {
				return true
			}
		case 'i':
			if hasPrefixFold(text[i:], "identified") {
				return true
			}
		case 'u':
			if i+1 < len(text) && text[i+1] == '&' {
				return true
			}
		}
	}
	return false
}

// hasPrefixFold reports whether s starts with the lower-case ASCII word w,
// ignoring ASCII case.
func hasPrefixFold[T string | []byte](s T, w string) bool {
	if len(s) < len(w) {
		return false
	}
	for j := 0; j < len(w); j++ {
		c := s[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != w[j] {
			return false
		}
	}
	return true
}

// indexFold is the index of the lower-case ASCII word w in s, ignoring
// ASCII case, or -1.
func indexFold(s, w string) int {
	for i := 0; i+len(w) <= len(s); i++ {
		if hasPrefixFold(s[i:], w) {
			return i
		}
	}
	return -1
}

// cutAtPassword keeps text up to the end of the first word holding
// PASSWORD or IDENTIFIED (or U&) and withholds the rest; text with none of
// them is withheld whole.
func cutAtPassword(text string) string {
	at := -1
	for _, w := range []string{"password", "identified", "u&"} {
		if i := indexFold(text, w); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at < 0 {
		return strings.TrimSpace(withheld)
	}
	end := at
	for end < len(text) && (isWordByte(text[end]) || text[end] == '&') {
		end++
	}
	return text[:end] + withheld
}

// maskPGTokens masks every string constant that directly follows the
// keyword PASSWORD (CREATE/ALTER ROLE, USER, GROUP) or an option named
// password (CREATE/ALTER USER MAPPING, SERVER ... OPTIONS), and every
// string constant that itself holds such a statement (a DO block's or a
// function's body, EXECUTE '...'): whole, since its password cannot be cut
// out of it. ok is false when PostgreSQL's scanner rejects the text.
func maskPGTokens(text string) (out string, ok bool) { return maskPGTokensAt(text, 0) }

// maxLiteralNesting bounds how deep string literals are opened looking for
// a password statement; deeper ones are masked whole (fail closed).
const maxLiteralNesting = 3

func maskPGTokensAt(text string, depth int) (out string, ok bool) {
	res, err := pg_query.Scan(text)
	if err != nil {
		return "", false
	}
	toks := make([]*pg_query.ScanToken, 0, len(res.Tokens))
	for _, t := range res.Tokens {
		if t.Token != pg_query.Token_SQL_COMMENT && t.Token != pg_query.Token_C_COMMENT {
			toks = append(toks, t)
		}
	}
	var b strings.Builder
	last := 0
	for i, v := range toks {
		switch v.Token {
		case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST:
		default:
			continue
		}
		start, end := int(v.Start), int(v.End)
		if start < last || end > len(text) || start > end {
			return "", false // offsets we cannot trust: fail closed
		}
		afterPassword := i > 0 && pgPasswordWord(text, toks[i-1]) // not PASSWORD NULL, not a column named password
		if !afterPassword && !literalCarries(pgLiteralBody(text[start:end]), depth, maskPGTokensAt) {
			continue
		}
		b.WriteString(text[last:start])
		b.WriteString(PasswordMask)
		last = end
	}
	if last == 0 {
		return text, true
	}
	b.WriteString(text[last:])
	return b.String(), true
}

// literalCarries reports whether a string literal's body holds a statement
// that sets a password: masking it by tokens changes it, or it is nested
// too deep to look. A body that does not scan is prose, not a statement
// anything could run ('it”s the password').
func literalCarries(body string, depth int, tokens func(string, int) (string, bool)) bool {
	if !MayCarryPassword(body) {
		return false
	}
	if depth >= maxLiteralNesting {
		return true
	}
	out, ok := tokens(body, depth+1)
	return ok && out != body
}

// pgLiteralBody is what a string constant holds, as far as it matters
// here: a standard string's body with ” undoubled, a dollar-quoted one's
// body; other forms (E”, U&”, B”, X”) as written.
func pgLiteralBody(raw string) string {
	switch {
	case len(raw) >= 2 && raw[0] == '\'' && raw[len(raw)-1] == '\'':
		return strings.ReplaceAll(raw[1:len(raw)-1], "''", "'")
	case len(raw) >= 2 && raw[0] == '$':
		if tag := strings.IndexByte(raw[1:], '$'); tag >= 0 && 2*(tag+2) <= len(raw) {
			return raw[tag+2 : len(raw)-tag-2]
		}
	}
	return raw
}

func pgPasswordWord(text string, t *pg_query.ScanToken) bool {
	switch t.Token {
	case pg_query.Token_PASSWORD:
		return true
	case pg_query.Token_UIDENT:
		return true // U&"..." cannot be read here; fail closed
	case pg_query.Token_IDENT:
		if int(t.End) > len(text) || t.Start > t.End {
			return true
		}
		return strings.EqualFold(strings.Trim(text[t.Start:t.End], `"`), "password")
	}
	return false
}

// verifyPG parses masked text and reports whether it parsed and whether
// every password option in it (DefElem "password": roles, user mappings,
// servers) is the mask or NULL.
func verifyPG(text string) (parsed, clean bool) {
	if tooDeep(text, false) {
		return false, false
	}
	tree, err := pg_query.Parse(text)
	if err != nil {
		return false, false
	}
	clean = true
	walkProto(tree.ProtoReflect(), func(m protoreflect.Message) bool {
		d, ok := m.Interface().(*pg_query.DefElem)
		if !ok || !strings.EqualFold(d.Defname, "password") || d.Arg == nil {
			return true
		}
		if s := d.Arg.GetString_(); s == nil || s.Sval != passwordMaskValue {
			clean = false
		}
		return clean
	})
	return true, clean
}

// walkProto calls f on m and every message below it until f returns false.
func walkProto(m protoreflect.Message, f func(protoreflect.Message) bool) bool {
	if !f(m) {
		return false
	}
	more := true
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len() && more; i++ {
				more = walkProto(l.Get(i).Message(), f)
			}
			return more
		}
		more = walkProto(v.Message(), f)
		return more
	})
	return more
}

// myToken is one token of a MySQL text: a word, a string literal, a
// backtick identifier or one punctuation byte.
type myToken struct {
	start, end int
	kind       byte // 'w' word, 's' string, 'i' quoted identifier, 'p' punctuation
}

// mysqlTokens splits text the way MySQL's lexer does for what masking
// needs. Executable comments (/*! */, /*M! */) are read as code, as the
// server may; plain comments are skipped. ok is false for an unterminated
// string or comment.
func mysqlTokens(text string) (toks []myToken, ok bool) {
	inExec := false
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c <= ' ':
			i++
		case c == '\'' || c == '"' || c == '`':
			end, ok := quotedEnd(text, i)
			if !ok {
				return nil, false
			}
			kind := byte('s')
			if c == '`' {
				kind = 'i'
			}
			toks = append(toks, myToken{i, end, kind})
			i = end
		case c == '#' || (c == '-' && isDashComment(text, i)):
			end := strings.IndexByte(text[i:], '\n')
			if end < 0 {
				return toks, true
			}
			i += end
		case c == '/' && i+1 < len(text) && text[i+1] == '*':
			j := i + 2
			if strings.HasPrefix(text[j:], "!") || strings.HasPrefix(text[j:], "M!") {
				j += strings.IndexByte(text[j:], '!') + 1
				for j < len(text) && '0' <= text[j] && text[j] <= '9' {
					j++
				}
				inExec, i = true, j
				continue
			}
			end := strings.Index(text[j:], "*/")
			if end < 0 {
				return nil, false
			}
			i = j + end + 2
		case c == '*' && inExec && i+1 < len(text) && text[i+1] == '/':
			inExec, i = false, i+2
		case isWordByte(c) || c >= 0x80:
			j := i
			for j < len(text) && (isWordByte(text[j]) || text[j] >= 0x80) {
				j++
			}
			toks = append(toks, myToken{i, j, 'w'})
			i = j
		default:
			toks = append(toks, myToken{i, i + 1, 'p'})
			i++
		}
	}
	return toks, true
}

// maskMySQLTokens masks, statement by statement:
//   - every string in an IDENTIFIED clause (BY, AS, USING, MariaDB's VIA
//     ... USING PASSWORD('...'), REPLACE '...'), up to the next user (a
//     comma) or REQUIRE, WITH, ACCOUNT, COMMENT, ATTRIBUTE, DEFAULT; the
//     plugin name after IDENTIFIED WITH stays;
//   - in SET PASSWORD, every string after the '=';
//   - a string after the word PASSWORD (IDENTIFIED BY PASSWORD '*hash',
//     CREATE SERVER ... OPTIONS (PASSWORD '...')), inside PASSWORD( ) and
//     OLD_PASSWORD( ), and after "<word ending in PASSWORD> =" (CHANGE
//     MASTER TO MASTER_PASSWORD = '...', START SLAVE PASSWORD = '...').
func maskMySQLTokens(text string) (string, bool) { return maskMySQLTokensAt(text, 0) }

func maskMySQLTokensAt(text string, depth int) (string, bool) {
	toks, ok := mysqlTokens(text)
	if !ok {
		return "", false
	}
	word := func(i int) string {
		if i < 0 || toks[i].kind != 'w' {
			return ""
		}
		return strings.ToUpper(text[toks[i].start:toks[i].end])
	}
	punct := func(i int, p byte) bool { return i >= 0 && toks[i].kind == 'p' && text[toks[i].start] == p }
	var b strings.Builder
	last := 0
	stmtStart, parens, armed, setPassword, afterEq := 0, 0, false, false, false
	prev := func(i int) int { // the previous token, charset introducers skipped
		for i--; i >= stmtStart; i-- {
			if w := word(i); w != "" && (w[0] == '_' || ((w == "N" || w == "X" || w == "B") && toks[i].end == toks[i+1].start)) {
				continue
			}
			return i
		}
		return -1
	}
	for i, t := range toks {
		switch t.kind {
		case 'p':
			switch text[t.start] {
			case ';':
				stmtStart, parens, armed, setPassword, afterEq = i+1, 0, false, false, false
			case '(':
				parens++
			case ')':
				parens--
			case ',':
				if parens == 0 {
					armed = false
				}
			case '=':
				afterEq = true
			}
			continue
		case 'w':
			switch w := word(i); w {
			case "IDENTIFIED":
				armed = true
			case "REQUIRE", "ACCOUNT", "COMMENT", "ATTRIBUTE", "DEFAULT":
				armed = false
			case "WITH":
				if word(prev(i)) != "IDENTIFIED" {
					armed = false
				}
			case "PASSWORD":
				if i == stmtStart+1 && word(stmtStart) == "SET" {
					setPassword = true
				}
			}
			continue
		case 'i':
			continue
		}
		p := prev(i)
		pw, pp := word(p), word(prev(p))
		mask := literalCarries(myLiteralBody(text[t.start:t.end]), depth, maskMySQLTokensAt) // PREPARE s FROM '...'
		if p < 0 && !mask {
			continue
		}
		mask = mask || (armed && !(pw == "WITH" && word(prev(p)) == "IDENTIFIED")) ||
			(setPassword && afterEq) ||
			pw == "PASSWORD" ||
			(punct(p, '(') && (pp == "PASSWORD" || pp == "OLD_PASSWORD")) ||
			(punct(p, '=') && strings.HasSuffix(pp, "PASSWORD"))
		if !mask {
			continue
		}
		b.WriteString(text[last:t.start])
		b.WriteString(PasswordMask)
		last = t.end
	}
	if last == 0 {
		return text, true
	}
	b.WriteString(text[last:])
	return b.String(), true
}

// myLiteralBody is a MySQL string's body with its quote undoubled and
// backslash escapes of quotes and backslashes undone (enough to read a
// statement held in it).
func myLiteralBody(raw string) string {
	if len(raw) < 2 {
		return raw
	}
	q := raw[:1]
	body := strings.ReplaceAll(raw[1:len(raw)-1], q+q, q)
	return strings.NewReplacer(`\\`, `\`, `\'`, `'`, `\"`, `"`).Replace(body)
}

var passwordParsers = sync.Pool{New: func() any { return parser.New() }}

// verifyMySQL parses masked text with TiDB's parser and reports whether it
// parsed and whether every password in it (CREATE/ALTER USER, GRANT ...
// IDENTIFIED BY, SET PASSWORD) is the mask.
func verifyMySQL(text string) (parsed, clean bool) {
	defer func() {
		if r := recover(); r != nil { // third-party code on odd input: fail closed
			parsed, clean = false, false
		}
	}()
	p := passwordParsers.Get().(*parser.Parser)
	stmts, _, err := p.Parse(text, "", "")
	passwordParsers.Put(p)
	if err != nil {
		return false, false
	}
	masked := func(s string) bool { return s == "" || s == passwordMaskValue }
	specs := func(us []*ast.UserSpec, cur *ast.AuthOption) bool {
		opts := []*ast.AuthOption{cur}
		for _, u := range us {
			opts = append(opts, u.AuthOpt)
		}
		for _, o := range opts {
			if o != nil && (!masked(o.AuthString) || !masked(o.HashString)) {
				return false
			}
		}
		return true
	}
	for _, s := range stmts {
		var ok bool
		switch s := s.(type) {
		case *ast.CreateUserStmt:
			ok = specs(s.Specs, nil)
		case *ast.AlterUserStmt:
			ok = specs(s.Specs, s.CurrentAuth)
		case *ast.GrantStmt:
			ok = specs(s.Users, nil)
		case *ast.SetPwdStmt:
			ok = masked(s.Password)
		default:
			ok = true
		}
		if !ok {
			return true, false
		}
	}
	return true, true
}
