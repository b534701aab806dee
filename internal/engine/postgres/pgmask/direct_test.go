package pgmask

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/sqlkind"
)

// rawConn speaks the protocol to the real PostgreSQL with pgproto3, so the
// filter sees exactly the messages an engine relays.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	fe *pgproto3.Frontend
}

func dial(t *testing.T) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", "127.0.0.1:5432", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	c := &rawConn{t: t, nc: nc, fe: pgproto3.NewFrontend(nc, nc)}
	c.fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "postgres", "database": testDB}})
	if err := c.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	c.until(nil, nil)
	return c
}

// outcome is what a client would have received, after the filter.
type outcome struct {
	rows   [][]*string
	copy   string
	err    string // the filter's error, or the server's (masked) message
	detail string
}

func (o *outcome) text() string {
	var b strings.Builder
	for _, r := range o.rows {
		for _, v := range r {
			if v != nil {
				b.WriteString(*v)
			}
			b.WriteByte('|')
		}
		b.WriteByte('\n')
	}
	return b.String() + o.copy + o.err + o.detail
}

// until reads to ReadyForQuery, passing results through f.
func (c *rawConn) until(f ResultFilter, o *outcome) {
	c.t.Helper()
	for {
		msg, err := c.fe.Receive()
		if err != nil {
			c.t.Fatal(err)
		}
		if o == nil {
			if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
				return
			}
			continue
		}
		if ferr := filterMsg(f, msg, o); ferr != nil && o.err == "" {
			o.err = "filter: " + ferr.Error()
		}
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			return
		}
	}
}

func filterMsg(f ResultFilter, msg pgproto3.BackendMessage, o *outcome) error {
	switch m := msg.(type) {
	case *pgproto3.RowDescription:
		return f.RowDescription(m)
	case *pgproto3.DataRow:
		if err := f.DataRow(m); err != nil {
			return err
		}
		row := make([]*string, len(m.Values))
		for i, v := range m.Values {
			if v != nil {
				s := string(v)
				row[i] = &s
			}
		}
		o.rows = append(o.rows, row)
	case *pgproto3.CopyData:
		if err := f.CopyData(m); err != nil {
			return err
		}
		o.copy += string(m.Data)
	case *pgproto3.ErrorResponse:
		MaskError(testRules(), []string{"creator"}, m)
		o.err, o.detail = m.Message, m.Detail
	}
	return nil
}

func (c *rawConn) simple(f ResultFilter, sql string) *outcome {
	c.t.Helper()
	c.fe.Send(&pgproto3.Query{String: sql})
	if err := c.fe.Flush(); err != nil {
		c.t.Fatal(err)
	}
	o := &outcome{}
	c.until(f, o)
	return o
}

// extended runs sql with Parse/Describe/Bind/Execute, asking for results
// in the given format, as pgx does for prepared queries.
func (c *rawConn) extended(f ResultFilter, sql string, format int16) *outcome {
	c.t.Helper()
	c.fe.Send(&pgproto3.Parse{Query: sql})
	c.fe.Send(&pgproto3.Bind{ResultFormatCodes: []int16{format}})
	c.fe.Send(&pgproto3.Describe{ObjectType: 'P'})
	c.fe.Send(&pgproto3.Execute{})
	c.fe.Send(&pgproto3.Sync{})
	if err := c.fe.Flush(); err != nil {
		c.t.Fatal(err)
	}
	o := &outcome{}
	c.until(f, o)
	return o
}

var alice = identity.Identity{Issuer: identity.LocalIssuer, Subject: "alice", Roles: []identity.Role{identity.RoleCreator}}

func filterFor(m *Masker, text string) ResultFilter {
	s := &guard.Session{ID: "s1", Identity: alice, Resource: "pg-test", Dialect: sqlkind.Postgres}
	op := &guard.Operation{Text: text, State: guard.State{SearchPath: `"$user", public`, Role: "postgres"}}
	return m.Filter(s, op, guard.Verdict{Decision: guard.Allow})
}

// dodges are statements that try to read a masked value without naming
// the column plainly.
var dodges = []string{
	"SELECT email, ssn, salary, born FROM customers",
	"SELECT email AS e, ssn AS s FROM customers",
	"SELECT * FROM customers",
	"SELECT upper(email), email || '', substr(ssn, 1, 3), ssn::text, salary::text, born::text FROM customers",
	"SELECT c::text FROM customers c",
	"SELECT row_to_json(c) FROM customers c",
	"SELECT to_jsonb(c) FROM customers c",
	"SELECT json_agg(c) FROM customers c",
	"SELECT string_agg(ssn, ',') FROM customers",
	"SELECT array_agg(email)::text FROM customers",
	"SELECT * FROM v_customers",
	"SELECT * FROM v_v",
	"WITH x AS (SELECT lower(email) AS l, ssn FROM customers) SELECT l, ssn FROM x",
	"SELECT email FROM customers UNION ALL SELECT ssn FROM customers",
	"SELECT s FROM (SELECT ssn || '' AS s FROM customers) q",
	"SELECT cust_ssn(1)",
	"SELECT * FROM parted_1",
	"SELECT ssn || '' FROM parted_1",
	"SELECT 1 AS one; SELECT ssn || '' FROM customers; SELECT upper(email) FROM customers",
	"SELECT format('%s', ssn) FROM customers",
}

func TestDirectDodges(t *testing.T) {
	m := newMasker(t)
	c := dial(t)
	for _, sql := range dodges {
		for _, run := range []struct {
			name string
			do   func(ResultFilter) *outcome
		}{
			{"simple", func(f ResultFilter) *outcome { return c.simple(f, sql) }},
			{"extended text", func(f ResultFilter) *outcome { return c.extended(f, sql, 0) }},
			{"extended binary", func(f ResultFilter) *outcome { return c.extended(f, sql, 1) }},
		} {
			if strings.Contains(sql, ";") && run.name != "simple" {
				continue
			}
			o := run.do(filterFor(m, sql))
			if o.err != "" && !strings.HasPrefix(o.err, "filter:") && run.name == "simple" {
				t.Errorf("%s (%s): server error %s", sql, run.name, o.err)
			}
			if l := leak(o.text()); l != "" {
				t.Errorf("%s (%s): %q reached the client:\n%s", sql, run.name, l, o.text())
			}
			if len(o.rows) == 0 && o.err == "" {
				t.Errorf("%s (%s): no rows", sql, run.name)
			}
		}
	}
}

func TestDirectShapes(t *testing.T) {
	m := newMasker(t)
	c := dial(t)
	tests := []struct {
		sql  string
		want []string // first row, "NULL" for NULL
	}{
		{"SELECT id, email, ssn, note, salary, born FROM customers WHERE id = 1",
			[]string{"1", "*****@****.io", "****", "call ****", "NULL", "NULL"}},
		{"SELECT contact, upper(contact), 'xxxxxxx' || substr(contact, 1, 3) FROM v_customers WHERE id = 1", []string{"****", "****", "****"}},
		{"SELECT id, note FROM customers WHERE id = 2", []string{"2", "vip"}},
		{"SELECT row_to_json(c)::jsonb FROM customers c WHERE id = 1", []string{`"****"`}},
		{"SELECT 'x@y.io' AS lit, 42 AS n", []string{"****", "42"}},
	}
	for _, tt := range tests {
		o := c.simple(filterFor(m, tt.sql), tt.sql)
		if len(o.rows) == 0 {
			t.Fatalf("%s: no rows (%s)", tt.sql, o.err)
		}
		got := make([]string, len(o.rows[0]))
		for i, v := range o.rows[0] {
			got[i] = "NULL"
			if v != nil {
				got[i] = *v
			}
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s:\n got %q\nwant %q", tt.sql, got, tt.want)
		}
	}
}

func TestDirectCopy(t *testing.T) {
	m := newMasker(t)
	c := dial(t)
	tests := []struct {
		sql     string
		want    string
		wantErr string
	}{
		{"COPY customers TO STDOUT",
			"1\t*****@****.io\t****\tcall ****\t\\N\t\\N\n2\t***@****.io\t****\tvip\t\\N\t\\N\n", ""},
		{"COPY customers (id, ssn) TO STDOUT (FORMAT csv, HEADER)", "id,ssn\n1,****\n2,****\n", ""},
		{"COPY (SELECT id, upper(email), ssn || ',x' FROM customers ORDER BY id) TO STDOUT (FORMAT csv, FORCE_QUOTE *)",
			"\"1\",\"****\",\"****\"\n\"2\",\"****\",\"****\"\n", ""},
		{"COPY (SELECT 'a\tb' AS t, 'x\\y' AS u, NULL AS n) TO STDOUT", "a\\tb\tx\\\\y\t\\N\n", ""},
		{"COPY (SELECT 'say \"hi\", ok' AS t) TO STDOUT (FORMAT csv)", "\"say \"\"hi\"\", ok\"\n", ""},
		{"COPY customers TO STDOUT (FORMAT binary)", "", "binary COPY"},
	}
	for _, tt := range tests {
		o := c.simple(filterFor(m, tt.sql), tt.sql)
		if tt.wantErr != "" {
			if !strings.Contains(o.err, tt.wantErr) {
				t.Errorf("%s: want error %q, got %q", tt.sql, tt.wantErr, o.err)
			}
			continue
		}
		if o.err != "" || o.copy != tt.want {
			t.Errorf("%s:\n got %q (%s)\nwant %q", tt.sql, o.copy, o.err, tt.want)
		}
	}
}

func TestUnmaskedVerdictFiltersNothing(t *testing.T) {
	m := newMasker(t)
	s := &guard.Session{ID: "s1", Identity: alice, Resource: "pg-test"}
	if f := m.Filter(s, &guard.Operation{Text: "SELECT 1"}, guard.Verdict{Decision: guard.Allow, Unmask: true, UnmaskGrantID: "g-1"}); f != nil {
		t.Fatal("an unmask grant still filters")
	}
	s.Resource = "pg-unruled"
	if f := m.Filter(s, &guard.Operation{Text: "SELECT 1"}, guard.Verdict{Decision: guard.Allow}); f != nil {
		t.Fatal("a resource without rules filters")
	}
}

func TestUniqueViolationMasked(t *testing.T) {
	m := newMasker(t)
	c := dial(t)
	sql := "INSERT INTO customers (id, email) VALUES (9, 'alice@corp.io')"
	o := c.simple(filterFor(m, sql), sql)
	if !strings.Contains(o.err, "duplicate key") || o.detail != "Key (email)=(****) already exists." {
		t.Fatalf("got %q / %q", o.err, o.detail)
	}
	sql = "SELECT ssn::int FROM customers"
	o = c.simple(filterFor(m, sql), sql)
	if l := leak(o.text()); l != "" || !strings.Contains(o.err, "invalid input syntax") {
		t.Fatalf("cast error: %q leaked: %s", l, o.text())
	}
}
