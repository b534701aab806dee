package sqlkind

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
)

// ALTER VIEW. TiDB's grammar has no ALTER VIEW, but MySQL's and MariaDB's
//
//	ALTER [ALGORITHM = ...] [DEFINER = ...] [SQL SECURITY ...] VIEW name [(cols)] AS select [WITH ... CHECK OPTION]
//
// is, word for word after its first, the CREATE OR REPLACE VIEW that TiDB
// parses ("CREATE" OrReplace ViewAlgorithm ViewDefiner ViewSQLSecurity
// "VIEW" ...), and has its effect on an existing view. So a statement
// the parser rejects is parsed once more with its first word ALTER
// replaced by CREATE OR REPLACE, and taken only when that parses as a
// CREATE OR REPLACE VIEW: every other token is the one the server reads
// (the text is a variant: comments are gone, executable ones expanded or
// refused before), and a CREATE OR REPLACE VIEW parse proves that the
// tokens after ALTER are view options, VIEW and a view definition. The
// operation's text, digest and review stay the client's ALTER VIEW.
//
// Only a text whose first statement is the ALTER VIEW is read so; an
// ALTER VIEW after another statement in the same text stays Unknown (the
// gateway would have to split statements itself).

// alterAsCreate returns variant with its first word, ALTER, replaced by
// CREATE OR REPLACE; false when it does not start with ALTER and a space.
func alterAsCreate(variant string) (string, bool) {
	i := 0
	for i < len(variant) && isMySQLSpace(variant[i]) {
		i++
	}
	const word = "ALTER"
	rest := variant[i:]
	if len(rest) <= len(word) || !strings.EqualFold(rest[:len(word)], word) || !isMySQLSpace(rest[len(word)]) {
		return "", false
	}
	return variant[:i] + "CREATE OR REPLACE" + rest[len(word):], true
}

// isMySQLSpace is the whitespace MySQL's lexer skips between tokens.
func isMySQLSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// parseAlterView parses a variant the parser rejected as the CREATE OR
// REPLACE VIEW its ALTER VIEW amounts to; nil when it is not one.
func parseAlterView(p *parser.Parser, variant string) []ast.StmtNode {
	text, ok := alterAsCreate(variant)
	if !ok {
		return nil
	}
	stmts, _, err := p.Parse(text, "", "")
	if err != nil || len(stmts) == 0 {
		return nil
	}
	if cv, ok := stmts[0].(*ast.CreateViewStmt); !ok || !cv.OrReplace {
		return nil
	}
	return stmts
}
