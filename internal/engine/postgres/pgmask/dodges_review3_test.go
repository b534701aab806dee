package pgmask

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
)

// The attacks in this file go through the real gateway (startGatewayWith)
// to the real PostgreSQL, with pgx in the simple protocol and in the
// extended protocol (text and binary results), and with psql; each tries
// to read a masked value in a way the other tests do not.

// bothRuleSets runs an attack under ruleSpecs (column rules; only the
// email detector, so a column rule that lineage misses shows) and under
// cardRules (the card and SSN detectors too, which protect the cards
// table).
// The attack checks what the client saw with leaked: under ruleSpecs the
// cards table is not protected at all, so only the customers secrets
// count there.
func bothRuleSets(t *testing.T, o gatewayOptions, attack func(t *testing.T, g *gateway, leaked func(string) string)) {
	for _, rs := range []struct {
		name   string
		rules  []config.MaskRule
		leaked func(string) string
	}{{"column rules", ruleSpecs, leak}, {"card detectors", cardRules, anyLeak}} {
		t.Run(rs.name, func(t *testing.T) {
			o.masking = rs.rules
			attack(t, startGatewayWith(t, o), rs.leaked)
		})
	}
}

// anyLeak checks a client's view for the customers secrets and the card.
func anyLeak(s string) string {
	if l := leak(s); l != "" {
		return l
	}
	return cardLeak(s)
}

// pgErrText is every text field of a PostgreSQL error; "" for another
// error.
func pgErrText(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return ""
	}
	return strings.Join([]string{pe.Message, pe.Detail, pe.Hint, pe.Where, pe.InternalQuery}, " | ")
}

// TestReview3Reads: output dodges the existing lists leave out.
func TestReview3Reads(t *testing.T) {
	bothRuleSets(t, gatewayOptions{}, review3Reads)
}

func review3Reads(t *testing.T, g *gateway, leaked func(string) string) {
	c := g.connect(t, "alice")
	attackEach(t, c, leaked, expectRows,
		"SELECT concat_ws(',', ssn, email), concat(salary, born) FROM customers",
		"SELECT jsonb_agg(c), jsonb_object_agg(email, ssn), json_object_agg(ssn, id) FROM customers c",
		"SELECT array_agg(c), array_agg(ROW(ssn, email)), array_agg(c)::text FROM customers c",
		"SELECT c FROM customers c",
		"SELECT (c).ssn, (c).* FROM customers c",
		"SELECT x.* FROM (SELECT * FROM customers) x",
		"TABLE customers",
		"SELECT 'x' UNION ALL SELECT ssn FROM customers",
		"SELECT id, note FROM customers UNION ALL SELECT id, ssn FROM customers",
		"SELECT (SELECT ssn FROM customers LIMIT 1), ARRAY(SELECT email FROM customers)",
		"SELECT s FROM customers, LATERAL (SELECT ssn AS s) l",
		"SELECT unnest(ARRAY[ssn, email]) FROM customers",
		"SELECT * FROM unnest((SELECT array_agg(ssn) FROM customers)) u",
		"SELECT * FROM json_each_text((SELECT row_to_json(c) FROM customers c LIMIT 1))",
		"SELECT xmlagg(xmlelement(name e, ssn)) FROM customers",
		"SELECT xmlforest(email, born), xmlelement(name x, xmlattributes(ssn AS a)) FROM customers",
		"SELECT encode(ssn::bytea, 'hex'), encode(convert_to(email, 'UTF8'), 'base64'), md5(ssn), reverse(ssn) FROM customers",
		"SELECT ssn::bytea, ssn::name, ssn::char(20), ssn COLLATE \"C\", salary::float8, salary::money, born::timestamptz FROM customers",
		"SELECT regexp_replace(ssn, '-', ''), translate(ssn, '-', '') FROM customers",
		"WITH RECURSIVE r(s) AS (SELECT ssn FROM customers UNION ALL SELECT s FROM r WHERE false) SELECT * FROM r",
		"SELECT * FROM (VALUES ((SELECT ssn FROM customers LIMIT 1))) v(x)",
		"SELECT DISTINCT ON (id) ssn, max(email) OVER () FROM customers",
		"SELECT b, f8, m FROM cards c UNION ALL SELECT b, f8, m FROM cards",
		"SELECT c FROM cards c",
		"SELECT email_at, upper(email_at), s FROM staff s",
		"SELECT * FROM staff",
		"EXPLAIN (ANALYZE, VERBOSE) SELECT email, ssn, salary, c FROM customers c",
		"EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) SELECT * FROM v_customers, cards",
	)
}

// TestReview3Cursors: a cursor's rows come from FETCH, whose text names no
// column; a binary cursor sends binary rows to a simple Query.
func TestReview3Cursors(t *testing.T) {
	bothRuleSets(t, gatewayOptions{}, review3Cursors)
}

func review3Cursors(t *testing.T, g *gateway, leaked func(string) string) {
	ctx := context.Background()
	for _, mode := range resultModes {
		c := g.connect(t, "alice")
		simple := pgx.QueryExecModeSimpleProtocol
		for _, sql := range []string{
			"BEGIN",
			"DECLARE cur CURSOR FOR SELECT ssn || '' AS s, upper(email) AS e, salary, c FROM customers c",
			"DECLARE bc BINARY CURSOR FOR SELECT ssn || '' AS s, salary, born, c, b, f8 FROM customers c, cards WHERE cards.id = 1",
			"DECLARE kc CURSOR FOR SELECT b, f8, m, fa, p FROM cards WHERE id = 1",
			"DECLARE hc CURSOR WITH HOLD FOR SELECT email || '' AS e, ssn FROM customers",
		} {
			if _, err := c.Exec(ctx, sql, simple); err != nil {
				t.Fatalf("%s: %v", sql, err)
			}
		}
		for _, sql := range []string{"FETCH 1 FROM cur", "FETCH ALL FROM cur", "FETCH ALL FROM bc", "FETCH ALL FROM kc", "FETCH BACKWARD 1 FROM kc", "FETCH FORWARD 5 FROM hc"} {
			out, err := rawAndDecoded(ctx, c, sql, mode.args...)
			if l := leaked(out + pgErrText(err)); l != "" || (err == nil && out == "") {
				t.Errorf("%s (%s): %q reached the client (%v):\n%s", sql, mode.name, l, err, out)
			}
		}
		if _, err := c.Exec(ctx, "COMMIT", simple); err != nil {
			t.Fatal(err)
		}
		out, err := rawAndDecoded(ctx, c, "FETCH ALL FROM hc", mode.args...)
		if l := leaked(out + pgErrText(err)); l != "" {
			t.Errorf("held cursor (%s): %q reached the client (%v):\n%s", mode.name, l, err, out)
		}
	}
}

// TestReview3ErrorsQuoteValues: errors outside SQLSTATE class 22 quote a
// value as a name when a masked column is cast to a reg* type or given to
// a function that looks a name up. Before the fix each of these showed
// the raw value (relation "219-09-9999" does not exist).
func TestReview3ErrorsQuoteValues(t *testing.T) {
	bothRuleSets(t, gatewayOptions{}, review3ErrorsQuoteValues)
}

func review3ErrorsQuoteValues(t *testing.T, g *gateway, leaked func(string) string) {
	ctx := context.Background()
	c := g.connect(t, "alice")
	attackEach(t, c, leaked, expectError,
		"SELECT ssn::regclass FROM customers",
		"SELECT ssn::regproc FROM customers",
		"SELECT ssn::regrole FROM customers",
		"SELECT ssn::regnamespace FROM customers",
		"SELECT ssn::regconfig FROM customers",
		"SELECT salary::text::regtype FROM customers",
		"SELECT born::text::regclass FROM customers",
		"SELECT current_setting(ssn) FROM customers",
		"SELECT nextval(ssn) FROM customers",
		"SELECT has_table_privilege(ssn, 'select') FROM customers",
		"SELECT now() AT TIME ZONE salary::text FROM customers",
		"SELECT format('%' || ssn) FROM customers",
		"SELECT pg_get_object_address(ssn, '{}', '{}') FROM customers",
		"EXPLAIN ANALYZE SELECT ssn::regclass FROM customers",
		"EXPLAIN (ANALYZE, VERBOSE) SELECT current_setting(ssn) FROM customers",
		"SELECT x FROM (SELECT ssn::regclass AS x FROM customers) q",
		"WITH q AS (SELECT ssn FROM customers) SELECT ssn::regrole FROM q",
		// Computed by PostgreSQL though no output or condition reads it.
		"WITH x AS MATERIALIZED (SELECT born::text::regclass FROM customers) SELECT 1 FROM x",
		"WITH x AS MATERIALIZED (SELECT ssn::regclass AS r FROM customers) SELECT count(*) FROM x",
		"SELECT 1 FROM customers, LATERAL generate_series(1, length(born::text::regclass::text)) g",
		"SELECT 1 FROM customers, ROWS FROM (generate_series(1, born::text::regclass::oid::int)) g",
		// Data exceptions that echo the value without quotes.
		"SELECT make_date(split_part(ssn, '-', 1)::int, split_part(ssn, '-', 2)::int, split_part(ssn, '-', 3)::int) FROM customers",
		"SELECT make_time(0, 0, salary::float8) FROM customers",
		"SELECT xmlparse(document ssn) FROM customers",
		"SELECT xmlparse(document '<a>' || born || '</b>') FROM customers",
	)
	// An error of a statement that reads nothing masked keeps its names:
	// a typo stays readable.
	_, err := rawAndDecoded(ctx, c, "SELECT 'custmers'::regclass", pgx.QueryExecModeSimpleProtocol)
	if !strings.Contains(pgErrText(err), `relation "custmers" does not exist`) {
		t.Errorf("an unmasked statement's error lost its name: %v", err)
	}
}

// TestReview3Writes: RETURNING, and the errors of writes that quote the
// row or the key (unique, check, not-null and foreign-key violations) on
// columns only detectors protect, holding a bytea and a float8.
func TestReview3Writes(t *testing.T) {
	bothRuleSets(t, gatewayOptions{kinds: []string{"schema", "privilege", "admin"}}, review3Writes)
}

func review3Writes(t *testing.T, g *gateway, leaked func(string) string) {
	c := g.connect(t, "alice")
	attackEach(t, c, leaked, expectAny,
		"UPDATE customers SET note = note WHERE id = 1 RETURNING ssn, email, ssn || '' AS s, c, salary",
		"UPDATE cards SET t = t WHERE id = 1 RETURNING b, f8, m, fa, ba, p, b::text, f8::text",
		"WITH u AS (UPDATE customers SET note = note RETURNING *) SELECT * FROM u",
		"WITH u AS (UPDATE cards SET t = t WHERE id = 1 RETURNING *) SELECT u FROM u",
		"DELETE FROM notes WHERE false RETURNING (SELECT ssn FROM customers LIMIT 1)",
		"INSERT INTO notes SELECT 'x' WHERE false RETURNING body, (SELECT b FROM cards WHERE id = 1)",
	)
	attackEach(t, c, leaked, expectError,
		"INSERT INTO cards (id, t) SELECT 3, t FROM cards WHERE id = 1",         // unique: Key (t)=(card 4111...)
		"INSERT INTO cards (id, b) SELECT 3, b FROM cards WHERE id = 1",         // unique: Key (b)=(\x3431...)
		"INSERT INTO cards (id, f8) SELECT 3, f8 FROM cards WHERE id = 1",       // unique: Key (f8)=(4.111111111111111e+15)
		"UPDATE cards SET t = 'forbidden' WHERE id = 1",                         // check: Failing row contains (...)
		"UPDATE cards SET id = NULL WHERE id = 1",                               // not null: Failing row contains (...)
		"INSERT INTO card_refs SELECT b || '\\x00' FROM cards WHERE id = 1",     // foreign key: Key (b)=(\x...) is not present
		"INSERT INTO cards (id, fd) SELECT 3, f8 + 0.5 FROM cards WHERE id = 1", // a domain CHECK quotes nothing, but try
		"INSERT INTO customers (id, email, ssn) SELECT 9, email, 'x' FROM customers WHERE id = 1",
		"INSERT INTO pmail SELECT replace(email, '@', ' at ') FROM staff",   // no partition: Partition key ... = (carol at corp.io)
		"INSERT INTO pmail SELECT salary::text FROM customers WHERE id = 1", // = (1000.50)
		// A referenced row of a partition: Key (id, ssn)=(1, 219-09-9999) is
		// still referenced, the key of a row the client never named.
		"DELETE FROM parted_1",
		"DELETE FROM parted",
		"UPDATE parted SET id = 2",
		// A unique key of a partition, holding a value the client did not
		// write: Key (id, ssn)=(2, 219-09-9999) already exists.
		"UPDATE parted_1 SET id = 2 WHERE id = 1",
	)
}

// TestReview3Copy: COPY of values only detectors protect, in the forms
// COPY writes them (hex bytea, exponent floats, grouped money), through
// pgx's CopyTo and through psql's \copy.
func TestReview3Copy(t *testing.T) {
	g := startGatewayWith(t, gatewayOptions{masking: cardRules})
	ctx := context.Background()
	c := g.connect(t, "alice")
	stmts := []string{
		"COPY cards TO STDOUT",
		"COPY cards TO STDOUT (FORMAT csv, HEADER)",
		"COPY cards (id, b, f8, m, fa, ba, p, pa) TO STDOUT (FORMAT csv, DELIMITER '|', QUOTE '''', FORCE_QUOTE *)",
		"COPY (SELECT b, f8, m, fa, ba, r, p, pa, pt, c::text FROM cards c) TO STDOUT",
		"COPY (SELECT b, f8, m, row_to_json(c) FROM cards c) TO STDOUT (FORMAT csv)",
		"COPY (SELECT array_agg(b), array_agg(f8) FROM cards) TO STDOUT (FORMAT text, NULL 'nil')",
		"COPY staff TO STDOUT",
		"COPY (SELECT email_at FROM staff) TO STDOUT (FORMAT csv)",
	}
	for _, sql := range stmts {
		var out bytes.Buffer
		_, err := c.PgConn().CopyTo(ctx, &out, sql)
		if err != nil {
			t.Errorf("%s: %v", sql, err)
		}
		if l := anyLeak(out.String()); l != "" || out.Len() == 0 {
			t.Errorf("%s: %q reached the client:\n%s", sql, l, out.String())
		}
	}
	var out bytes.Buffer
	if _, err := c.PgConn().CopyTo(ctx, &out, "COPY cards TO STDOUT (FORMAT binary)"); err == nil || anyLeak(out.String()) != "" {
		t.Errorf("binary COPY under detectors: want a refusal, got %v\n%q", err, out.String())
	}
	for _, sql := range []string{
		`\copy cards to stdout`,
		`\copy (select b, f8, m, fa, p from cards) to stdout csv`,
		`SELECT b, f8, m, fa, ba, p, pa, pt FROM cards`,
	} {
		cmd := exec.Command("psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql, g.url("alice"))
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v: %s", sql, err, b)
			continue
		}
		if l := anyLeak(string(b)); l != "" || len(b) == 0 {
			t.Errorf("psql %s: %q reached the client:\n%s", sql, l, b)
		}
	}
}

var reviewID = regexp.MustCompile(`review (r-[0-9a-f]+)`)

// TestReview3Notices: RAISE in a reviewed DO block of values only the
// detectors protect, written as hex bytea and in exponent form, and of a
// column rule's value in quotes.
func TestReview3Notices(t *testing.T) {
	// No filter: deny rule, which would refuse the block (its code cannot
	// be traced).
	g := startGatewayWith(t, gatewayOptions{masking: []config.MaskRule{ruleSpecs[2], cardRules[3]}})
	ctx := context.Background()
	var notices []string
	cfg, err := pgx.ParseConfig(g.url("alice"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		notices = append(notices, n.Message+" | "+n.Detail+" | "+n.Hint)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	const do = `DO $$ DECLARE v bytea; f float8; s text; BEGIN
  SELECT b, f8 INTO v, f FROM cards WHERE id = 1;
  RAISE NOTICE 'b %', v USING DETAIL = 'f ' || f, HINT = v::text;
  RAISE NOTICE 'arr %', ARRAY[f];
  SELECT salary::text INTO s FROM customers WHERE id = 1;
  RAISE NOTICE 'salary "%"', s;
  RAISE EXCEPTION 'row %', (SELECT c FROM cards c WHERE id = 1);
END $$`
	_, err = c.Exec(ctx, do, pgx.QueryExecModeSimpleProtocol)
	m := reviewID.FindStringSubmatch(pgErrText(err))
	if m == nil {
		t.Fatalf("a DO block: want a review, got %v", err)
	}
	bob := e2eIdentity("bob", "dba-leads")
	if _, err := g.svc.Approve(ctx, m[1], review.Actor{Identity: bob, Via: "api", Scopes: []identity.Scope{identity.ScopeAPI}}, "ok"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Exec(ctx, do, pgx.QueryExecModeSimpleProtocol)
	got := strings.Join(notices, "\n") + "\n" + pgErrText(err)
	if l := anyLeak(got); l != "" || len(notices) != 3 || !strings.Contains(pgErrText(err), "row") {
		t.Errorf("%d notices, %q reached the client (%v):\n%s", len(notices), l, err, got)
	}
}

// TestReview3Stats: pg_stats and the extended statistics hold sampled
// values of every column, masked ones included.
func TestReview3Stats(t *testing.T) {
	ctx := context.Background()
	for _, q := range []string{
		"CREATE STATISTICS IF NOT EXISTS customers_stx (mcv) ON ssn, email FROM customers",
		"ANALYZE customers", "ANALYZE cards",
	} {
		if _, err := testPool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	g := startGatewayWith(t, gatewayOptions{masking: cardRules})
	c := g.connect(t, "alice")
	attackEach(t, c, anyLeak, expectAny,
		"SELECT attname, most_common_vals, histogram_bounds, most_common_vals::text FROM pg_stats WHERE tablename IN ('customers', 'cards')",
		"SELECT * FROM pg_stats WHERE tablename = 'customers'",
		"SELECT * FROM pg_stats_ext WHERE tablename = 'customers'",
		"SELECT m.* FROM pg_statistic_ext_data d, pg_mcv_list_items(d.stxdmcv) m",
		"SELECT stavalues1::text, stavalues2::text FROM pg_statistic",
	)
}

// TestReview3ErrorsAfterApproval: a write that waits for its review and
// then runs has its errors' quoted values masked too (the operation was
// allowed by the approval, not by the first decision).
func TestReview3ErrorsAfterApproval(t *testing.T) {
	g := startGatewayWith(t, gatewayOptions{mode: "wait"})
	ctx := context.Background()
	c := g.connect(t, "alice")
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "UPDATE customers SET note = born::text::regclass::text WHERE id = 1", pgx.QueryExecModeSimpleProtocol)
		done <- err
	}()
	bob := e2eIdentity("bob", "dba-leads")
	for approved := false; !approved; {
		select {
		case err := <-done:
			t.Fatalf("the write ended before its review was approved: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		rs, err := g.svc.List(ctx, review.Filter{Resource: "pg-test", Status: review.StatusPending})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if _, err := g.svc.Approve(ctx, r.ID, review.Actor{Identity: bob, Via: "api", Scopes: []identity.Scope{identity.ScopeAPI}}, "ok"); err != nil {
				t.Fatal(err)
			}
			approved = true
		}
	}
	err := <-done
	text := pgErrText(err)
	if text == "" || leak(text) != "" {
		t.Errorf("the approved write's error: %v (%s)", err, text)
	}
}

// TestReview3Psql: the attacks as psql sends them (simple protocol, text
// results, errors and notices printed), errors included.
func TestReview3Psql(t *testing.T) {
	if _, err := testPool.Exec(context.Background(), "ANALYZE customers"); err != nil {
		t.Fatal(err)
	}
	bothRuleSets(t, gatewayOptions{}, func(t *testing.T, g *gateway, leaked func(string) string) {
		for _, sql := range []string{
			`SELECT concat_ws(',', ssn, email), format('%s|%s', salary, born) FROM customers`,
			`SELECT c, c::text, row_to_json(c) FROM customers c`,
			`SELECT b, f8, m, fa, ba, p, pa, pt, c::text FROM cards c`,
			`SELECT ssn::regclass FROM customers`,
			`SELECT make_date(split_part(ssn, '-', 1)::int, 1, 1) FROM customers`,
			`SELECT xmlparse(document ssn) FROM customers`,
			`BEGIN; DECLARE k CURSOR FOR SELECT ssn || '' AS s, b, f8 FROM customers, cards; FETCH ALL FROM k; COMMIT`,
			`\copy (select b, f8, m, email_at from cards, staff) to stdout csv`,
			`SELECT most_common_vals, histogram_bounds FROM pg_stats WHERE tablename = 'customers'`,
		} {
			out, _ := exec.Command("psql", "-X", "-At", "-c", sql, g.url("alice")).CombinedOutput()
			if l := leaked(string(out)); l != "" || len(out) == 0 {
				t.Errorf("psql %s: %q reached the client:\n%s", sql, l, out)
			}
		}
	})
}
