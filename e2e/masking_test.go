package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Masking through the real binary (issue 6): every way of reading a masked
// value that the issue lists is tried with pgx and psql against a real
// table, and each asserts that no raw value reaches the client, the
// recording or the gateway's log.

var maskSchema = []string{
	`CREATE TABLE customers (id int PRIMARY KEY, email text UNIQUE, ssn text, tier text, salary numeric, born date)`,
	`INSERT INTO customers VALUES
	   (1, 'alice@corp.io', '219-09-9999', 'gold', 1000.50, '1980-01-02'),
	   (2, 'bob@corp.io', '321-54-9876', 'silver', 2000.25, '1990-03-04')`,
	`CREATE VIEW v_customers AS SELECT id, email AS contact, ssn FROM customers`,
}

// maskSecrets are the raw values, and pieces of them, no client may see.
var maskSecrets = []string{"alice@corp.io", "bob@corp.io", "alice@", "bob@", "219-09", "321-54", "9999", "9876",
	"1000.5", "2000.25", "1980-01-02", "1990-03-04", "gold", "silver"}

// maskValues are the whole raw values: events and logs hold hex digests
// and ids, in which a four-digit piece could turn up by chance.
var maskValues = []string{"alice@corp.io", "bob@corp.io", "219-09-9999", "321-54-9876", "1000.50", "2000.25", "1980-01-02", "1990-03-04"}

func maskLeak(s string) string {
	for _, x := range maskSecrets {
		if strings.Contains(strings.ToLower(s), strings.ToLower(x)) {
			return x
		}
	}
	return ""
}

// maskingYAML is the resource's masking policy: two column rules with
// different strategies, a filter: deny column, a rule only creators are
// held to (auditors see tiers), and detectors for what is left.
const maskingYAML = `      masking:
        - columns: ["*.email"]
          strategy: partial
          keep_last: 3
        - columns: ["public.customers.ssn"]
          strategy: redact
          filter: deny
        - columns: ["public.customers.salary", "public.customers.born"]
          strategy: redact
        - columns: ["public.customers.tier"]
          strategy: redact
          roles: [creator]
        - detectors: [email, us_ssn]
          strategy: redact
`

// newMaskingGateway is a gateway (reject mode) with two resources on db:
// pg-mask under maskingYAML, and pg-open under the same rules without
// filter: deny. Code the gateway cannot trace (a DO block, a function)
// uses columns it cannot see, so where a filter: deny rule applies it is
// refused without an unmask grant; pg-open is where it can run, reviewed.
func newMaskingGateway(t *testing.T, db string) *gateway {
	t.Helper()
	specs := []resourceSpec{{Name: "pg-mask", Type: "postgres", Database: db, Mode: "reject"},
		{Name: "pg-open", Type: "postgres", Database: db, Mode: "reject"}}
	g := newGateway(t, specs...)
	cfg := g.config(specs)
	const anchor = "        max_duration: 4h\n"
	if strings.Count(cfg, anchor) != 2 {
		t.Fatalf("the generated config changed shape; cannot add masking rules:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, anchor, anchor+maskingYAML, 1)
	i := strings.LastIndex(cfg, anchor) + len(anchor)
	cfg = cfg[:i] + strings.Replace(maskingYAML, "          filter: deny\n", "", 1) + cfg[i:]
	if err := os.WriteFile(g.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatalf("writing the gateway config: %v", err)
	}
	return g
}

// noticeLog keeps the notices of the connections it made.
type noticeLog struct {
	mu  sync.Mutex
	got strings.Builder
}

func (l *noticeLog) connect(ctx context.Context, t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		l.mu.Lock()
		defer l.mu.Unlock()
		fmt.Fprintln(&l.got, n.Message, n.Detail, n.Hint, n.Where)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgx through the gateway: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// take returns the notices so far, one a line, and forgets them.
func (l *noticeLog) take() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.got.String()
	l.got.Reset()
	return s
}

// pgxRowsText runs a query and renders every value as text.
func pgxRowsText(ctx context.Context, c *pgx.Conn, sql string, args ...any) (string, error) {
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return "", err
		}
		fmt.Fprintln(&b, vals...)
	}
	return b.String(), rows.Err()
}

func TestMaskingDodges(t *testing.T) {
	t.Parallel()
	db := pgDatabase(t)
	pgExec(t, db, maskSchema...)
	g := newMaskingGateway(t, db)
	alice := g.token("alice", "engineers")
	bob := g.token("bob", "dba-leads")
	carol := g.token("carol", "engineers")
	dave := g.token("dave", "audit")
	g.start()

	ctx := ctxFor(t, 3*time.Minute)
	var notices noticeLog
	c := notices.connect(ctx, t, g.pgConnString("pg-mask", "alice", alice))

	t.Run("pgx", func(t *testing.T) {
		dodges := []struct{ name, sql string }{
			{"plain", "SELECT email, ssn, salary, born FROM customers"},
			{"alias", "SELECT email AS e, ssn AS s, born AS b FROM customers"},
			{"select star", "SELECT * FROM customers"},
			{"view", "SELECT * FROM v_customers"},
			{"subquery", "SELECT s, e FROM (SELECT ssn || '' AS s, email AS e FROM customers) q"},
			{"cte", "WITH x AS (SELECT lower(email) AS l, ssn FROM customers) SELECT l, ssn FROM x"},
			{"expressions", "SELECT upper(email), substr(ssn, 1, 3), email || '', concat(ssn, '') FROM customers"},
			{"casts", "SELECT ssn::text, salary::text, born::text, ssn::varchar(20), ssn::bytea, to_json(email), email::name FROM customers"},
			{"row_to_json", "SELECT row_to_json(c) FROM customers c"},
			{"to_jsonb field", "SELECT to_jsonb(c) ->> 'ssn', to_jsonb(c) FROM customers c"},
			{"json_agg", "SELECT json_agg(c) FROM customers c"},
			{"array_agg", "SELECT array_agg(ssn), array_agg(email)::text FROM customers"},
			{"string_agg", "SELECT string_agg(ssn, ','), string_agg(email, ';') FROM customers"},
			{"union", "SELECT email FROM customers UNION ALL SELECT ssn FROM customers"},
			{"record", "SELECT c::text FROM customers c"},
		}
		modes := []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec}
		for _, d := range dodges {
			for _, mode := range modes {
				out, err := pgxRowsText(ctx, c, d.sql, mode)
				if err != nil {
					t.Errorf("%s (%v): %s: %v", d.name, mode, d.sql, err)
					continue
				}
				if l := maskLeak(out); l != "" || out == "" {
					t.Errorf("%s (%v): %q reached the client:\n%s", d.name, mode, l, out)
				}
			}
		}
	})

	t.Run("prepared statement in binary format", func(t *testing.T) {
		sd, err := c.Prepare(ctx, "star", "SELECT * FROM customers")
		if err != nil {
			t.Fatal(err)
		}
		binary := make(pgx.QueryResultFormats, len(sd.Fields))
		for i := range binary {
			binary[i] = pgx.BinaryFormatCode
		}
		for _, q := range []struct {
			sql     string
			formats pgx.QueryResultFormats
		}{
			{"star", binary}, // by the prepared statement's name
			{"SELECT ssn, email, salary, born, row_to_json(c)::jsonb FROM customers c", pgx.QueryResultFormats{1, 1, 1, 1, 1}},
		} {
			sql := q.sql
			rows, err := c.Query(ctx, sql, q.formats)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for rows.Next() {
				for _, raw := range rows.RawValues() {
					b.Write(raw)
					b.WriteByte('|')
				}
				vals, err := rows.Values()
				if err != nil {
					t.Fatalf("%s: a masked binary row does not decode: %v", sql, err)
				}
				fmt.Fprintln(&b, vals...)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if l := maskLeak(b.String()); l != "" || b.Len() == 0 {
				t.Errorf("%s in binary: %q reached the client:\n%s", sql, l, b.String())
			}
		}
		// Numbers and dates that a rule masks cannot be written as a mask
		// in binary: they arrive as NULL, and the driver decodes the row.
		var salary, born any
		if err := c.QueryRow(ctx, "SELECT salary, born FROM customers WHERE id = 1").Scan(&salary, &born); err != nil || salary != nil || born != nil {
			t.Errorf("salary %v, born %v, err %v", salary, born, err)
		}
	})

	t.Run("copy to stdout", func(t *testing.T) {
		for _, sql := range []string{
			"COPY customers TO STDOUT",
			"COPY (SELECT * FROM customers) TO STDOUT",
			"COPY (SELECT upper(email), ssn || '', row_to_json(c) FROM customers c) TO STDOUT (FORMAT csv, HEADER)",
			"COPY (SELECT * FROM v_customers) TO STDOUT WITH (DELIMITER '|', NULL 'nil')",
		} {
			var out bytes.Buffer
			if _, err := c.PgConn().CopyTo(ctx, &out, sql); err != nil {
				t.Errorf("%s: %v", sql, err)
				continue
			}
			if l := maskLeak(out.String()); l != "" || out.Len() == 0 {
				t.Errorf("%s: %q reached the client:\n%s", sql, l, out.String())
			}
		}
		// Binary COPY cannot be masked: refused, and nothing leaks.
		var out bytes.Buffer
		_, err := c.PgConn().CopyTo(ctx, &out, "COPY customers TO STDOUT (FORMAT binary)")
		if err == nil || maskLeak(out.String()+err.Error()) != "" {
			t.Errorf("binary COPY: %v\n%q", err, out.String())
		}
	})

	t.Run("psql", func(t *testing.T) {
		for _, sql := range []string{
			`\copy customers to stdout`,
			`\copy (select email, ssn, born from customers) to stdout csv header`,
			`\copy (select * from v_customers) to stdout`,
			`COPY (SELECT string_agg(ssn, ',') FROM customers) TO STDOUT`,
			`SELECT * FROM customers`,
			`SELECT json_agg(c) FROM customers c`,
		} {
			cmd := exec.Command("psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql, g.pgConnString("pg-mask", "alice", alice))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("psql %s: %v\n%s", sql, err, out)
				continue
			}
			if l := maskLeak(string(out)); l != "" || len(out) == 0 {
				t.Errorf("psql %s: %q reached the client:\n%s", sql, l, out)
			}
		}
	})

	t.Run("errors quoting the value", func(t *testing.T) {
		for _, sql := range []string{
			"SELECT ssn::int FROM customers",
			"SELECT email::int FROM customers",
			"SELECT born::text::int FROM customers",
			"SELECT (email || '}')::json FROM customers",
		} {
			_, err := pgxRowsText(ctx, c, sql, pgx.QueryExecModeSimpleProtocol)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Errorf("%s: want a PostgreSQL error, got %v", sql, err)
				continue
			}
			if l := maskLeak(pgErr.Message + pgErr.Detail + pgErr.Hint + pgErr.Where); l != "" {
				t.Errorf("%s: %q in the error: %+v", sql, l, pgErr)
			}
		}
	})

	t.Run("filter deny", func(t *testing.T) {
		for _, sql := range []string{
			"SELECT id FROM customers WHERE ssn LIKE '2%'",
			"SELECT id FROM customers ORDER BY ssn",
			"SELECT CASE WHEN ssn > '3' THEN 1 END FROM customers",
			"SELECT id FROM v_customers WHERE ssn = '1'",
		} {
			_, err := pgxRowsText(ctx, c, sql)
			if err == nil || !strings.Contains(err.Error(), "unmask") {
				t.Errorf("%s: want a refusal naming an unmask grant, got %v", sql, err)
			}
		}
	})

	t.Run("rules by role", func(t *testing.T) {
		d, err := pgx.Connect(ctx, g.pgConnString("pg-mask", "dave", dave))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close(context.Background())
		var tier, email string
		if err := d.QueryRow(ctx, "SELECT tier, email FROM customers WHERE id = 1").Scan(&tier, &email); err != nil || tier != "gold" || email != "*****@****.io" {
			t.Errorf("auditor: tier %q, email %q, err %v", tier, email, err)
		}
		if err := c.QueryRow(ctx, "SELECT tier FROM customers WHERE id = 1").Scan(&tier); err != nil || tier != "****" {
			t.Errorf("creator: tier %q, err %v", tier, err)
		}
	})

	t.Run("raise notice in a reviewed DO block", func(t *testing.T) {
		const do = `DO $$ DECLARE v text; BEGIN
  SELECT email INTO v FROM customers WHERE id = 1; RAISE NOTICE 'contact %', v;
  SELECT ssn INTO v FROM customers WHERE id = 1; RAISE NOTICE 'ssn %', v USING DETAIL = 'again ' || v, HINT = v;
END $$`
		// Under filter: deny, code the gateway cannot trace is refused.
		_, err := c.Exec(ctx, do, pgx.QueryExecModeSimpleProtocol)
		if err == nil || !strings.Contains(err.Error(), "unmask") {
			t.Fatalf("a DO block under filter: deny: want a refusal naming an unmask grant, got %v", err)
		}
		c := notices.connect(ctx, t, g.pgConnString("pg-open", "alice", alice))
		// A DO block is of unknown kind: reviewed, then run as approved.
		_, err = c.Exec(ctx, do, pgx.QueryExecModeSimpleProtocol)
		g.mustCLI(bob, "reviews", "approve", heldReview(t, err))
		notices.take()
		if _, err := c.Exec(ctx, do, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("the approved DO block: %v", err)
		}
		got := notices.take()
		n := strings.Count(got, "\n")
		if l := maskLeak(got); l != "" || n != 2 {
			t.Errorf("%d notices, %q reached the client:\n%s", n, l, got)
		}
	})

	t.Run("writes: unique violation and notify", func(t *testing.T) {
		grantWrite(t, g, alice, bob, "pg-mask")
		_, err := c.Exec(ctx, "INSERT INTO customers (id, email) SELECT 9, email FROM customers WHERE id = 1")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
			t.Fatalf("want a unique violation (23505), got %v", err)
		}
		if l := maskLeak(pgErr.Message + pgErr.Detail + pgErr.Hint); l != "" || !strings.Contains(pgErr.Detail, "Key (email)=(") {
			t.Errorf("unique violation: %q leaked: %s / %s", l, pgErr.Message, pgErr.Detail)
		}

		listener, err := pgx.Connect(ctx, g.pgConnString("pg-mask", "alice", alice))
		if err != nil {
			t.Fatal(err)
		}
		defer listener.Close(context.Background())
		if _, err := listener.Exec(ctx, "LISTEN masked_channel"); err != nil {
			t.Fatal(err)
		}
		// From a session through the gateway, and from outside it (a
		// trigger or another application): both payloads are scanned.
		if _, err := c.Exec(ctx, "SELECT pg_notify('masked_channel', 'to ' || email) FROM customers WHERE id = 1"); err != nil {
			t.Fatalf("pg_notify through the gateway: %v", err)
		}
		// A filter: deny column as the data of a write (a notification
		// carries it out): refused.
		if _, err := c.Exec(ctx, "SELECT pg_notify('masked_channel', ssn) FROM customers WHERE id = 1"); err == nil || !strings.Contains(err.Error(), "unmask") {
			t.Errorf("pg_notify of a filter: deny column: want a refusal naming an unmask grant, got %v", err)
		}
		direct := pgDirect(t, db)
		if _, err := direct.Exec(ctx, "NOTIFY masked_channel, 'from outside: bob@corp.io 321-54-9876'"); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			n, err := listener.WaitForNotification(wctx)
			cancel()
			if err != nil {
				t.Fatalf("waiting for a notification through the gateway: %v", err)
			}
			if l := maskLeak(n.Payload); l != "" || !strings.Contains(n.Payload, "****") {
				t.Errorf("notification payload: %q leaked: %q", l, n.Payload)
			}
		}
	})

	t.Run("unmask grant is recorded as unmasked", func(t *testing.T) {
		grant(t, g, carol, bob, "pg-mask", "unmask", "1h", "ticket 6")
		cc, err := pgx.Connect(ctx, g.pgConnString("pg-mask", "carol", carol))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close(context.Background())
		var ssn string
		if err := cc.QueryRow(ctx, "SELECT ssn AS carol_ssn FROM customers WHERE id = 1").Scan(&ssn); err != nil || ssn != "219-09-9999" {
			t.Fatalf("under the unmask grant: %q %v", ssn, err)
		}
		if err := c.QueryRow(ctx, "SELECT ssn AS alice_ssn FROM customers WHERE id = 1").Scan(&ssn); err != nil || ssn != "****" {
			t.Fatalf("alice has no unmask grant: %q %v", ssn, err)
		}
		// The gateway's journal reaches the SQLite file a moment after
		// the query returns; another process reads the file.
		st := openStore(t, g)
		var unmasked map[string]string
		waitFor(t, 10*time.Second, "carol's query in the store", func() bool {
			unmasked = unmaskedOps(t, st)
			return len(unmasked) > 0
		})
		if len(unmasked) != 1 || unmasked["SELECT ssn AS carol_ssn FROM customers WHERE id = 1"] == "" {
			t.Errorf("want exactly carol's query recorded as unmasked with its grant, got %v", unmasked)
		}
	})

	// Nothing above put a raw value in the recording or the log: the
	// statements hold none, and results, errors and notices are masked
	// before anything keeps them (carol's unmasked result is not recorded).
	// A stopped gateway has moved its whole journal into the file; it
	// stops once its sessions end.
	_ = c.Close(ctx)
	g.stop()
	st := openStore(t, g)
	rows, err := st.QueryContext(ctx, "SELECT type, data FROM events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var data []byte
		if err := rows.Scan(&typ, &data); err != nil {
			t.Fatal(err)
		}
		for _, v := range maskValues {
			if bytes.Contains(data, []byte(v)) {
				t.Errorf("a %s event holds %q: %s", typ, v, data)
			}
		}
	}
	for _, v := range maskValues {
		if strings.Contains(g.log(), v) {
			t.Errorf("the gateway's log holds %q", v)
		}
	}
}

// unmaskedOps reads the operation events recorded as unmasked: text to
// unmask grant id.
func unmaskedOps(t *testing.T, st *sql.DB) map[string]string {
	t.Helper()
	rows, err := st.QueryContext(context.Background(), "SELECT data FROM events WHERE type = 'operation'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	unmasked := map[string]string{}
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			t.Fatal(err)
		}
		var op struct {
			Text          string `json:"text"`
			Unmasked      bool   `json:"unmasked"`
			UnmaskGrantID string `json:"unmask_grant_id"`
		}
		if err := json.Unmarshal(data, &op); err != nil {
			t.Fatal(err)
		}
		if op.Unmasked {
			unmasked[op.Text] = op.UnmaskGrantID
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return unmasked
}

// TestMaskingLargeResultBoundedMemory streams a 1M-row masked result
// through the real binary and checks the gateway's peak resident memory
// (VmHWM), not the time it took: rows are masked one at a time, so the
// result never accumulates in the gateway.
func TestMaskingLargeResultBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a million rows")
	}
	t.Parallel()
	const rows = 1_000_000
	db := pgDatabase(t)
	pgExec(t, db, maskSchema[0],
		fmt.Sprintf(`INSERT INTO customers SELECT i, 'user' || i || '@example.com', '219-09-' || lpad((i %% 10000)::text, 4, '0'),
		   'tier ' || i, i, date '2000-01-01' + (i %% 9000) FROM generate_series(1, %d) AS i`, rows))
	g := newMaskingGateway(t, db)
	alice := g.token("alice", "engineers")
	g.start()
	ctx := ctxFor(t, 5*time.Minute)
	c, err := pgx.Connect(ctx, g.pgConnString("pg-mask", "alice", alice))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	before := vmHWM(t, g.cmd.Process.Pid)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		res, err := c.Query(ctx, "SELECT id, email, ssn, tier, born FROM customers", mode)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for res.Next() {
			raw := res.RawValues()
			masked := !bytes.HasPrefix(raw[1], []byte("user")) && string(raw[2]) == "****" && raw[4] == nil
			if n%100_000 == 0 && !masked {
				t.Fatalf("row %d is not masked: %q", n, raw)
			}
			n++
		}
		if err := res.Err(); err != nil || n != rows {
			t.Fatalf("%v: %d rows, %v", mode, n, err)
		}
	}
	peak := vmHWM(t, g.cmd.Process.Pid)
	t.Logf("gateway VmHWM %d MiB before, %d MiB after two %d-row masked results", before>>20, peak>>20, rows)
	if peak > 100<<20 {
		t.Fatalf("the gateway's resident memory peaked at %d MiB streaming a masked result (limit 100 MiB)", peak>>20)
	}
}

// vmHWM is a process's peak resident set size in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the gateway's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
