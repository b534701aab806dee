package mysql

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/sqlkind"
)

// The walk's answer for each statement of the attack tables, and more:
// which refusals come from a traced use of customers.ssn (use) and which
// from what the walk cannot tell (unresolved), so that a refusal for the
// wrong reason does not pass for a traced one. The catalog is the real
// one of the test database.
func TestFilterUsesWalk(t *testing.T) {
	t.Parallel()
	fx := newFilterEnv(t)
	res := realResource("walk", "reject", nil)
	cat, err := fetchViews(&res)
	if err != nil {
		t.Fatal(err)
	}
	cat.fetchColumns = func(schema, table string) ([]string, error) { return fetchTableColumns(&res, schema, table) }
	cls := sqlkind.NewMySQL(sqlkind.MySQLOptions{})
	ssn := mask.Source{Schema: testDB, Table: fx.sub.Replace("{c}"), Column: "ssn"}
	const (
		none = iota // no use of customers.ssn, resolved
		use         // customers.ssn is a traced use, resolved
		unres
	)
	tests := []struct {
		text string
		want int
	}{
		{"SELECT name FROM {c} WHERE ssn LIKE '1%'", use},
		{"SELECT name FROM {c} WHERE ROW(id, (ssn)) = ROW(1, 'x')", use},
		{"SELECT c.name FROM {c} c JOIN {n} n ON n.note = c.ssn", use},
		{"SELECT name FROM {c} JOIN {o} USING (ssn)", use},
		{"SELECT name FROM {c} NATURAL JOIN {o}", use},
		{"SELECT name FROM {c} ORDER BY ssn", use},
		{"SELECT name, ssn FROM {c} ORDER BY 2", use},
		{"SELECT ssn AS s FROM {c} ORDER BY s", use},
		{"SELECT COUNT(*) FROM {c} GROUP BY ssn", use},
		{"SELECT name FROM {c} GROUP BY name HAVING MAX(ssn) > '1'", use},
		{"SELECT DISTINCT ssn FROM {c}", use},
		{"SELECT DISTINCT * FROM {c}", use},
		{"SELECT ssn FROM {c} UNION SELECT note FROM {n}", use},
		{"SELECT ssn FROM {c} INTERSECT SELECT note FROM {n}", use},
		{"(SELECT ssn FROM {c}) UNION ALL (SELECT note FROM {n}) ORDER BY 1", use},
		{"SELECT CASE WHEN ssn LIKE '1%' THEN 1 ELSE 0 END FROM {c}", use},
		{"SELECT ssn = 'x' FROM {c}", use},
		{"SELECT LENGTH(ssn) FROM {c}", use},
		{"SELECT MIN(ssn) FROM {c}", use},
		{"SELECT COUNT(DISTINCT ssn) FROM {c}", use},
		{"SELECT IF(ssn LIKE '1%', 1, 0) FROM {c}", use},
		{"SELECT CONCAT(ssn, '') FROM {c}", use},
		{"SELECT ROW_NUMBER() OVER (ORDER BY ssn) FROM {c}", use},
		{"SELECT ROW_NUMBER() OVER w FROM {c} WINDOW w AS (PARTITION BY ssn)", use},
		{"SELECT GROUP_CONCAT(name ORDER BY ssn) FROM {c}", use},
		{"SELECT name FROM {c} WHERE MATCH (ssn) AGAINST ('x')", use},
		{"SELECT name FROM {c} WHERE id IN (SELECT id FROM {c} WHERE ssn LIKE '1%')", use},
		{"SELECT name FROM {c} c WHERE EXISTS (SELECT 1 FROM {n} WHERE c.ssn LIKE '1%')", use},
		{"SELECT name FROM {c} WHERE EXISTS (SELECT 1 FROM {n} WHERE ssn LIKE '1%')", use},
		{"SELECT name FROM {c} WHERE id IN (SELECT ssn FROM {c})", use},
		{"SELECT name FROM {c} WHERE EXISTS (SELECT * FROM {c} c2 WHERE c2.id = 1)", use},
		{"SELECT (SELECT ssn FROM {c} WHERE id = 1) LIKE '1%'", use},
		{"SELECT name FROM (SELECT name, ssn FROM {c}) d WHERE d.ssn LIKE '1%'", use},
		{"SELECT name FROM (SELECT * FROM {c}) d WHERE ssn LIKE '1%'", use},
		{"SELECT name FROM (SELECT d2.* FROM {c} d2) d WHERE d.ssn LIKE '1%'", use},
		{"WITH x AS (SELECT ssn FROM {c}) SELECT COUNT(*) FROM x WHERE ssn LIKE '1%'", use},
		{"WITH x (s) AS (SELECT ssn FROM {c}) SELECT COUNT(*) FROM x WHERE s LIKE '1%'", use},
		{"WITH x AS (SELECT ssn FROM {c}) SELECT 1 FROM (SELECT * FROM x) d WHERE d.ssn LIKE '1%'", use},
		{"WITH RECURSIVE r AS (SELECT ssn AS s FROM {c} UNION ALL SELECT s FROM r WHERE s LIKE '1%') SELECT 1 FROM r", unres},
		{"SELECT s FROM (SELECT ssn AS s FROM {c}) t WHERE s LIKE '1%'", use},
		{"SELECT name FROM {v}", use},
		{"SELECT id FROM {vv} WHERE contact LIKE '1%'", use},
		{"INSERT INTO {n} (id, note) SELECT id + 100, ssn FROM {c}", use},
		{"INSERT INTO {n} VALUES (200, (SELECT ssn FROM {c} WHERE id = 1))", use},
		{"INSERT INTO {n} (id, note) SELECT id, name FROM {c} ON DUPLICATE KEY UPDATE note = ssn", use},
		{"INSERT INTO {n} SET id = 9, note = (SELECT ssn FROM {c} WHERE id = 1)", use},
		{"REPLACE INTO {n} (id, note) SELECT id, ssn FROM {c}", use},
		{"CREATE VIEW w_new AS SELECT name FROM {c} WHERE ssn LIKE '1%'", use},
		{"CREATE OR REPLACE VIEW {v} AS SELECT id, name FROM {c} ORDER BY ssn", use},
		{"ALTER VIEW {v} AS SELECT id, name FROM {c} WHERE ssn > '1'", unres}, // not in TiDB's grammar
		{"UPDATE {c} SET name = ssn WHERE id = 2", use},
		{"UPDATE {n} n JOIN {c} c ON c.id = n.id SET n.note = c.ssn", use},
		{"DELETE FROM {c} WHERE ssn = 'nothing'", use},
		{"DELETE FROM {c} ORDER BY ssn LIMIT 1", use},
		{"CREATE TABLE {n}_copy AS SELECT ssn FROM {c}", use},
		{"ALTER TABLE {c} ADD UNIQUE (ssn)", use},
		{"CREATE INDEX i ON {c} (ssn)", use},
		{"SET @y = (SELECT ssn FROM {c} WHERE id = 1)", use},
		{"SELECT @z := ssn FROM {c} WHERE id = 1", use},
		{"EXPLAIN SELECT name FROM {c} WHERE ssn = 'x'", use},
		{"DO (SELECT ssn FROM {c} WHERE id = 1) LIKE '1%'", unres}, // DO is Unknown to the classifier
		{"PREPARE s FROM 'SELECT name FROM {c} WHERE ssn LIKE ''1%'''", use},
		{"SELECT 1; SELECT name FROM {c} WHERE ssn LIKE '1%'", use},
		{"SELECT `NAME` FROM `{c}` WHERE `SsN` LIKE '1%'", use},
		{"SELECT name FROM {db}.{c} WHERE {db}.{c}.ssn LIKE '1%'", use},
		{"SELECT x.name FROM {c} AS x WHERE x.SSN LIKE '1%'", use},
		{"USE {db}; SELECT name FROM {c} WHERE ssn LIKE '1%'", use},
		{"SELECT name FROM {c} WHERE (SELECT ssn) LIKE '1%'", use},
		{"SELECT ssn FROM {c} HAVING ssn LIKE '1%'", use},
		{"SELECT 1 FROM {c} WHERE ssn", use},
		{"SELECT name FROM {c} WHERE id = (SELECT MIN(id) FROM {c} WHERE ssn > '1')", use},
		{"WITH x AS (SELECT ssn FROM {c}) SELECT 1 WHERE EXISTS (SELECT 1 FROM x WHERE ssn LIKE '1%')", use},
		{"WITH x AS (SELECT ssn FROM {c}) SELECT 1 FROM x NATURAL JOIN {o}", use},
		{"SELECT ssn FROM {c} UNION ALL SELECT ssn FROM {c} ORDER BY 1", use},

		{"SELECT name FROM {c} WHERE {f}(ssn)", unres},
		{"PREPARE s FROM @q", unres},
		{"EXECUTE nothing_prepared", unres},
		{"SELECT name FROM {c} /*!50000 WHERE ssn LIKE '1%' */", unres},
		{"SELECT name FROM {c} WHERE ssn LIKE '1%' garbage garbage", unres},
		{"SELECT name FROM {c} WHERE nosuch.ssn LIKE '1%'", unres},
		{"CALL p()", unres},
		{"SELECT ssn FROM {c} PROCEDURE ANALYSE()", unres},
		{"SELECT ssn FROM {c} WHERE id = 1 INTO @x", unres},
		{"HANDLER {c} READ ssn = ('1')", unres},
		{"SET STATEMENT max_statement_time = 1 FOR SELECT name FROM {c} WHERE ssn LIKE '1%'", unres},
		{"CREATE TRIGGER tr BEFORE INSERT ON {n} FOR EACH ROW SET NEW.note = (SELECT ssn FROM {c} LIMIT 1)", unres},
		{"DELETE FROM {n} WHERE id = 1 RETURNING note", unres},

		{"SELECT ssn FROM {c}", none},
		{"SELECT ssn AS x FROM {c}", none},
		{"SELECT c.ssn FROM {c} c", none},
		{"SELECT (ssn) FROM {c}", none},
		{"SELECT name FROM {c} WHERE id = 1", none},
		{"SELECT * FROM {c} WHERE id = 1 ORDER BY name", none},
		{"SELECT {c}.* FROM {c} JOIN {n} ON {n}.id = {c}.id", none},
		{"SELECT ssn FROM {c} UNION ALL SELECT note FROM {n}", none},
		{"SELECT s FROM (SELECT ssn AS s, id FROM {c}) t WHERE t.id = 1", none},
		{"WITH x AS (SELECT * FROM {c}) SELECT ssn FROM x WHERE name = 'ada'", none},
		{"SELECT (SELECT ssn FROM {c} WHERE id = 1)", none},
		{"SELECT c.ssn, n.note FROM {c} c JOIN {n} n ON n.id = c.id", none},
		{"SELECT ssn FROM {c} JOIN {n} USING (id)", none},
		{"SELECT id FROM {o} WHERE ssn LIKE '1%'", none},
		{"SELECT contact FROM {vv} WHERE id = 1", none},
		{"SELECT ssn FROM {c} WHERE id IN (SELECT id FROM {n})", none},
		{"INSERT INTO {n} VALUES (7, 'y')", none},
		{"INSERT INTO {c} (id, name, ssn) VALUES (9, 'x', 'guess')", none}, // the target is no use (docs: a limit)
		{"UPDATE {n} SET note = 'x' WHERE id = 1", none},
		{"UPDATE {c} SET ssn = 'x' WHERE id = 1", none},
		{"SHOW COLUMNS FROM {c}", none},
		{"BEGIN", none},
		{"CREATE TABLE t_new (id INT, ssn TEXT)", none},
		{"DROP TABLE IF EXISTS t_new", none},
		{"SET @a = 1", none},
		{"CREATE VIEW w_new AS SELECT id, ssn FROM {c} WHERE id > 1", none},
		{"SELECT name FROM {c} WHERE EXISTS (SELECT 1 FROM {o} WHERE {o}.ssn = 'x')", none},
	}
	for _, tc := range tests {
		text := fx.sub.Replace(tc.text)
		t.Run(tc.text, func(t *testing.T) {
			uses, unresolved := analyzeFilterUses(text, testDB, cls.Classify(text).Kind, nil, nil, func() *viewCatalog { return cat })
			got := none
			switch {
			case unresolved:
				got = unres
			case slices.ContainsFunc(uses, func(s mask.Source) bool { return sameSource(s, ssn) }):
				got = use
			}
			if got != tc.want {
				t.Errorf("got %d (uses %v, unresolved %v), want %d", got, uses, unresolved, tc.want)
			}
		})
	}
}

// sameSource compares as the rules do: names in any letter case.
func sameSource(a, b mask.Source) bool {
	return strings.EqualFold(a.Schema, b.Schema) && strings.EqualFold(a.Table, b.Table) && strings.EqualFold(a.Column, b.Column)
}

// A prepared text is walked where it is executed, in the schema it was
// prepared in; a PREPARE earlier in the same text counts.
func TestFilterUsesExecute(t *testing.T) {
	t.Parallel()
	tbl := "cust_" + randHex(3)
	ssn := mask.Source{Schema: "elsewhere", Table: tbl, Column: "ssn"}
	cat := &viewCatalog{views: map[viewKey]*viewInfo{}, tables: map[string]bool{}}
	prepared := map[string]string{"s": "SELECT name FROM " + tbl + " WHERE ssn LIKE '1%'", "ok": "SELECT ssn FROM " + tbl}
	in := map[string]string{"s": "elsewhere", "ok": "elsewhere"}
	tests := []struct {
		text      string
		use, unre bool
	}{
		{"EXECUTE s", true, false},
		{"EXECUTE S USING @a", true, false},
		{"EXECUTE ok", false, false},
		{"DEALLOCATE PREPARE ok; EXECUTE ok", false, true},
		{"PREPARE ok FROM 'SELECT 1 FROM " + tbl + " ORDER BY ssn'; EXECUTE ok", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			uses, unresolved := analyzeFilterUses(tc.text, "current", sqlkind.Read, prepared, in, func() *viewCatalog { return cat })
			if slices.Contains(uses, ssn) != tc.use || unresolved != tc.unre {
				t.Errorf("uses %v, unresolved %v; want use %v, unresolved %v", uses, unresolved, tc.use, tc.unre)
			}
		})
	}
	if len(prepared) != 2 || strings.Contains(prepared["ok"], "ORDER") {
		t.Fatalf("the session's prepared statements changed: %v", prepared)
	}
}

// Views read many times over (each joining the one below twice) are
// walked at most maxViewsPerOperation times: past that the statement is
// unresolved, not walked for ever.
func TestFilterUsesViewBound(t *testing.T) {
	t.Parallel()
	sfx := randHex(3)
	base := "vb_" + sfx
	stmts := []string{fmt.Sprintf("CREATE TABLE %s.%s (id INT PRIMARY KEY, name VARCHAR(50))", testDB, base)}
	below := base
	for i := 0; i < 8; i++ {
		v := fmt.Sprintf("vb%d_%s", i, sfx)
		stmts = append(stmts, fmt.Sprintf("CREATE VIEW %s.%s AS SELECT a.id, a.name FROM %s.%s a JOIN %s.%s b ON a.id = b.id", testDB, v, testDB, below, testDB, below))
		below = v
	}
	if err := adminExec(stmts...); err != nil {
		t.Fatal(err)
	}
	res := realResource("walk", "reject", nil)
	cat, err := fetchViews(&res)
	if err != nil {
		t.Fatal(err)
	}
	catalog := func() *viewCatalog { return cat }
	if _, unres := analyzeFilterUses("SELECT name FROM vb1_"+sfx, testDB, sqlkind.Read, nil, nil, catalog); unres {
		t.Fatal("two levels of views (3 definitions) are unresolved")
	}
	if _, unres := analyzeFilterUses("SELECT name FROM "+below, testDB, sqlkind.Read, nil, nil, catalog); !unres {
		t.Fatal("510 view definitions walked")
	}
}

// No text makes the walk panic (nothing on user input panics: doc.go).
func FuzzFilterUses(f *testing.F) {
	for _, s := range []string{
		"SELECT name FROM c WHERE ssn LIKE '1%'",
		"WITH RECURSIVE r AS (SELECT ssn AS s FROM c UNION ALL SELECT s FROM r WHERE s LIKE '1%') SELECT 1 FROM r",
		"SELECT name FROM (SELECT * FROM c) d NATURAL JOIN o WHERE d.ssn > 1 ORDER BY 1",
		"INSERT INTO n (id, note) SELECT id, name FROM c ON DUPLICATE KEY UPDATE note = ssn",
		"PREPARE s FROM 'SELECT 1 FROM c ORDER BY ssn'; EXECUTE s; DEALLOCATE PREPARE s; EXECUTE s",
		"SELECT (SELECT ssn) LIKE '1%', c.* FROM c GROUP BY 2 HAVING x WINDOW w AS (ORDER BY ssn)",
		"UPDATE n JOIN (SELECT ssn s FROM c) d USING (s) SET note = d.s",
		"ALTER TABLE c ADD UNIQUE (ssn)",
	} {
		f.Add(s)
	}
	cat := &viewCatalog{views: map[viewKey]*viewInfo{
		{"db", "v"}: {def: "SELECT a.ssn AS contact FROM db.c a WHERE a.id > 1", cols: []string{"contact"}},
	}, lower: map[string]bool{"db.v": true}, names: map[string]bool{"v": true}, tables: map[string]bool{"db.c": true}}
	prepared := map[string]string{"s": "SELECT * FROM v WHERE contact = 1"}
	f.Fuzz(func(t *testing.T, text string) {
		analyzeFilterUses(text, "db", sqlkind.Read, prepared, map[string]string{"s": "db"}, func() *viewCatalog { return cat })
	})
}
