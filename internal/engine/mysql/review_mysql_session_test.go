package mysql

import (
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/sqlkind"
)

// TestReviewUnknownUseFollowed: an approved Unknown statement may switch
// the server's schema where the gateway cannot see (EXECUTE of a prepared
// USE); the engine reads the schema back after it, so the next
// unqualified statement is decided, reviewed and recorded in the schema
// the server runs it in.
func TestReviewUnknownUseFollowed(t *testing.T) {
	other := otherSchema(t)
	ev := schemasEnv(t, false, other) // allows unknown: as if approved
	c := gatewayClient(t, ev)
	if _, err := c.Execute("USE " + testDB); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute("PREPARE s FROM 'USE " + other + "'"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute("EXECUTE s"); err != nil {
		t.Fatal(err)
	}
	if op := ev.g.LastOp(); op.Class.Kind != sqlkind.Unknown {
		t.Fatalf("EXECUTE of a prepared USE was decided as %s", op.Class.Kind)
	}
	res, err := c.Execute("SELECT DATABASE()")
	if err != nil {
		t.Fatal(err)
	}
	server, _ := res.GetString(0, 0)
	if gw := ev.g.LastOp().State.Schema; server != other || gw != other {
		t.Fatalf("the server is in %q, the gateway decides in %q; want %q", server, gw, other)
	}
	ops := ev.rec.OfType(recording.TypeOperation)
	last, ok := ops[len(ops)-1].Data.(*recording.OperationData)
	if !ok || last.Text != "SELECT DATABASE()" || last.Schema != other {
		t.Fatalf("the last operation was recorded as %+v", ops[len(ops)-1].Data)
	}
}

// leakySettings is a classifier with a bug: it lets every SET through as
// a read, Tokenizing flags dropped, as a future classifier change might.
type leakySettings struct{ *sqlkind.MySQLClassifier }

func (l leakySettings) Statements(text string) []sqlkind.MySQLStatement {
	return clearTokenizing(l.MySQLClassifier.Statements(text))
}

func (l leakySettings) ClassifySessionStatements(text string, prepared map[string]string) (sqlkind.Classification, []string, []sqlkind.MySQLStatement) {
	c, texts, stmts := l.MySQLClassifier.ClassifySessionStatements(text, prepared)
	if strings.HasPrefix(text, "SET ") {
		c.Kind, c.Reason = sqlkind.Read, ""
	}
	return c, texts, clearTokenizing(stmts)
}

func clearTokenizing(stmts []sqlkind.MySQLStatement) []sqlkind.MySQLStatement {
	out := make([]sqlkind.MySQLStatement, len(stmts))
	for i, s := range stmts {
		s.Settings = append([]sqlkind.MySQLSetting(nil), s.Settings...)
		for j := range s.Settings {
			s.Settings[j].Tokenizing = false
		}
		out[i] = s
	}
	return out
}

// TestReviewSetReadBack: were the classifier to let SET sql_mode =
// 'ANSI_QUOTES' through as a read (here it is made to), the settings
// read back after every SET find the session's new quoting: the session
// ends before its next statement, which the gateway would misread
// (invariant 8), reaches the server.
func TestReviewSetReadBack(t *testing.T) {
	table := reviewTable(t, "set_readback")
	ev := newEnv(t, func(o *Options) {
		o.Guard = creatorGuard{o.Guard.(*enginetest.Guard)}
		o.Classifier = leakySettings{sqlkind.NewMySQL(sqlkind.MySQLOptions{})}
	})
	db := ev.open(t, "my-test", "multiStatements=true")
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("SET sql_mode = 'ANSI_QUOTES'"); err != nil {
		t.Fatalf("the leaky classifier did not let the SET through: %v", err)
	}
	rows, err := db.Query(`SELECT 1 AS "a\" , 1; DELETE FROM ` + testDB + "." + table + `; -- "`)
	if err == nil {
		for rows.NextResultSet() {
		}
		rows.Close()
		t.Error("the session went on after an ANSI_QUOTES SET")
	}
	if n := upstreamCount(t, table); n != 1 {
		t.Fatalf("a hidden DELETE ran: %d rows left", n)
	}
}
