package mysql

import "testing"

// filterAttack is an attempt to use customers.ssn other than as output
// that the analysis might miss. noGrant marks the ones that would not run
// (or would change the shared tables) even under an unmask grant.
type filterAttack struct {
	filterCase
	noGrant bool
}

func fuAttack(name string, steps ...string) filterAttack {
	return filterAttack{filterCase: filterCase{name: name, steps: steps}}
}

// filterAttacks must each be refused with the unmask-grant hint.
var filterAttacks = []filterAttack{
	fuAttack("natural join reversed", "SELECT name FROM {o} NATURAL JOIN {c}"),
	fuAttack("natural left join", "SELECT name FROM {c} NATURAL LEFT JOIN {o}"),
	fuAttack("left join using", "SELECT name FROM {c} LEFT JOIN {o} USING (ssn)"),
	// Aliases differ by case only: MariaDB (lower_case_table_names=0)
	// tells them apart, x is customers.
	fuAttack("aliases differing by case", "SELECT x.name FROM {o} X, {c} x WHERE x.ssn LIKE '1%'"),
	fuAttack("inner alias differing by case", "SELECT name FROM {c} x WHERE EXISTS (SELECT 1 FROM {o} X WHERE x.ssn LIKE '1%')"),
	fuAttack("alias shadowing a table (outer)", "SELECT note FROM {n} AS {c} WHERE EXISTS (SELECT 1 FROM {c} AS x WHERE {c}.note = 'first' AND x.ssn LIKE '1%')"),
	fuAttack("alias shadowing a table", "SELECT note FROM {n} WHERE EXISTS (SELECT 1 FROM {c} AS {o} WHERE {o}.ssn LIKE '1%')"),
	// A subquery (or a window) sees the select list's aliases.
	fuAttack("alias in order by subquery", "SELECT ssn AS s FROM {c} ORDER BY (SELECT s LIKE '1%')"),
	fuAttack("alias in having subquery", "SELECT ssn AS s FROM {c} HAVING (SELECT s LIKE '1%')"),
	fuAttack("alias in having exists", "SELECT ssn AS s FROM {c} HAVING EXISTS (SELECT 1 FROM {n} WHERE s LIKE '1%')"),
	fuAttack("alias in group by subquery", "SELECT ssn AS s FROM {c} GROUP BY (SELECT s)"),
	fuAttack("alias in select-list subquery", "SELECT ssn AS s, (SELECT s LIKE '1%') FROM {c}"),
	fuAttack("alias in window order", "SELECT ssn AS s, RANK() OVER (ORDER BY s) FROM {c}"),
	fuAttack("alias in named window", "SELECT ssn AS s, RANK() OVER w FROM {c} WINDOW w AS (ORDER BY s)"),
	fuAttack("window partition", "SELECT ROW_NUMBER() OVER (PARTITION BY ssn) FROM {c}"),
	fuAttack("order by 1", "SELECT ssn, name FROM {c} ORDER BY 1"),
	fuAttack("group by 1", "SELECT ssn FROM {c} GROUP BY 1"),
	fuAttack("star order by position", "SELECT * FROM {c} ORDER BY 3"),
	fuAttack("union literal", "SELECT ssn FROM {c} UNION SELECT '123'"),
	fuAttack("except", "SELECT ssn FROM {c} EXCEPT SELECT '123'"),
	fuAttack("group_concat", "SELECT GROUP_CONCAT(ssn) FROM {c}"),
	fuAttack("upper cased column", "SELECT name FROM {c} WHERE SSN LIKE '1%'"),
	fuAttack("backquoted qualified", "SELECT name FROM {c} WHERE `{c}`.`SSN` LIKE '1%'"),
	fuAttack("schema qualified cased", "SELECT name FROM {db}.{c} WHERE `{db}`.{c}.SsN LIKE '1%'"),
	fuAttack("on duplicate key from select", "INSERT INTO {n} (id, note) SELECT id, name FROM {c} ON DUPLICATE KEY UPDATE note = IF({c}.ssn LIKE '1%', 'y', 'n')"),
	fuAttack("on duplicate key existing row", "INSERT INTO {c} (id, name) VALUES (2, 'b') ON DUPLICATE KEY UPDATE name = IF(ssn LIKE '1%', 'y', 'n')"),
	fuAttack("insert set", "INSERT INTO {n} SET id = 300, note = (SELECT ssn FROM {c} WHERE id = 1)"),
	fuAttack("replace select", "REPLACE INTO {n} (id, note) SELECT id + 400, ssn FROM {c}"),
	fuAttack("multi-table update", "UPDATE {n}, {c} SET {n}.note = 'x' WHERE {n}.id = {c}.id AND {c}.ssn LIKE '1%'"),
	fuAttack("multi-table delete", "DELETE {n} FROM {n} JOIN {c} ON {c}.id = {n}.id WHERE {c}.ssn = 'nothing'"),
	fuAttack("delete using", "DELETE FROM {n} USING {n}, {c} WHERE {n}.id = {c}.id AND {c}.ssn = 'nothing'"),
	fuAttack("update order by", "UPDATE {c} SET name = name ORDER BY ssn LIMIT 1"),
	fuAttack("create temporary table", "CREATE TEMPORARY TABLE {n}_tmp AS SELECT ssn FROM {c}"),
	fuAttack("multi statement second filters", "SELECT ssn FROM {c}; SELECT ssn AS s FROM {c} ORDER BY (SELECT s)"),
	fuAttack("mariadb executable comment", "SELECT name FROM {c} /*M!100000 WHERE ssn LIKE '1%' */"),
	fuAttack("nested comment", "SELECT name FROM {c} WHERE 1 /* a /* b */ AND ssn LIKE '1%' -- */"),
	{filterCase: filterCase{name: "prepared alias subquery", binary: true, steps: []string{"SELECT ssn AS s FROM {c} HAVING (SELECT s LIKE ?)"}, args: []any{"1%"}}},
	{filterCase: filterCase{name: "prepared window alias", binary: true, steps: []string{"SELECT ssn AS s, RANK() OVER (ORDER BY s) FROM {c} WHERE id > ?"}, args: []any{0}}},
	fuAttack("sql prepare alias subquery", "PREPARE s FROM 'SELECT ssn AS s FROM {c} ORDER BY (SELECT s)'", "EXECUTE s"),
	fuAttack("view then alias", "SELECT contact AS k FROM {vv} ORDER BY (SELECT k)"),
	fuAttack("derived then alias", "SELECT s AS k FROM (SELECT ssn AS s FROM {c}) t ORDER BY (SELECT k)"),
	// A derived table's or CTE's unaliased column is named by its text.
	fuAttack("unaliased scalar subquery in derived", "SELECT 1 AS r FROM (SELECT (SELECT ssn FROM {c} WHERE id = 1)) t WHERE t.`(SELECT ssn FROM {c} WHERE id = 1)` LIKE '1%'"),
	fuAttack("unaliased scalar subquery in cte", "WITH x AS (SELECT (SELECT ssn FROM {c} WHERE id = 1)) SELECT 1 AS r FROM x WHERE `(SELECT ssn FROM {c} WHERE id = 1)` LIKE '1%'"),
	fuAttack("unaliased scalar subquery in having", "SELECT (SELECT ssn FROM {c} WHERE id = 1) FROM {n} HAVING `(SELECT ssn FROM {c} WHERE id = 1)` LIKE '1%'"),
	fuAttack("unaliased scalar subquery in order by subquery", "SELECT (SELECT ssn FROM {c} WHERE id = 1) FROM {n} ORDER BY (SELECT `(SELECT ssn FROM {c} WHERE id = 1)` LIKE '1%')"),
	fuAttack("union all derived filtered", "SELECT * FROM (SELECT ssn FROM {c} UNION ALL SELECT note FROM {n}) t WHERE ssn LIKE '1%'"),
	fuAttack("json_table", `SELECT j.v FROM {c}, JSON_TABLE(CONCAT('["', {c}.ssn, '"]'), '$[*]' COLUMNS (v VARCHAR(50) PATH '$')) j WHERE j.v LIKE '1%'`),
	fuAttack("with recursive", "WITH RECURSIVE r (s, k) AS (SELECT ssn, 1 FROM {c} UNION ALL SELECT s, k + 1 FROM r WHERE k < 2) SELECT s FROM r WHERE s LIKE '1%'"),
	fuAttack("handler", "HANDLER {c} OPEN", "HANDLER {c} READ `PRIMARY` FIRST WHERE ssn LIKE '1%'", "HANDLER {c} CLOSE"),
	{filterCase: filterCase{name: "procedure analyse", steps: []string{"SELECT ssn FROM {c} PROCEDURE ANALYSE()"}}},
	fuAttack("double dash without space", "SELECT name FROM {c} WHERE id = 1 --1 OR ssn LIKE '1%'"),
	fuAttack("into variable after from", "SELECT ssn FROM {c} WHERE id = 1 INTO @v", "SELECT @v LIKE '1%'"),
	fuAttack("order by assignment", "SELECT name FROM {c} ORDER BY @x := ssn"),
	fuAttack("values statement", "VALUES ((SELECT ssn FROM {c} WHERE id = 1) LIKE '1%')"),
	{filterCase: filterCase{name: "checksum table", steps: []string{"CHECKSUM TABLE {c}"}}, noGrant: true},
	{filterCase: filterCase{name: "into outfile", steps: []string{"SELECT ssn FROM {c} INTO OUTFILE '/nonexistent/x'"}}, noGrant: true},
	{filterCase: filterCase{name: "load data set", steps: []string{"LOAD DATA INFILE '/nonexistent/x' INTO TABLE {n} (id, @x) SET note = (SELECT ssn FROM {c} WHERE id = 1)"}}, noGrant: true},
	{filterCase: filterCase{name: "generated column", steps: []string{"ALTER TABLE {n} ADD COLUMN h INT AS (id + (SELECT COUNT(*) FROM {c} WHERE ssn LIKE '1%')) VIRTUAL"}}, noGrant: true},
}

// filterSchemaAttacks change the schema so that a later statement may
// test the value (under a column or table name the rule does not name):
// each must be refused, on tables of its own.
var filterSchemaAttacks = []filterCase{
	{name: "rename column", steps: []string{"ALTER TABLE {c} RENAME COLUMN ssn TO s2", "SELECT name FROM {c} WHERE s2 LIKE '1%'"}},
	{name: "change column", steps: []string{"ALTER TABLE {c} CHANGE ssn s3 VARCHAR(50)", "SELECT name FROM {c} WHERE s3 LIKE '1%'"}},
	{name: "foreign key", steps: []string{"CREATE TABLE {n}_fk (v VARCHAR(50), FOREIGN KEY (v) REFERENCES {c} (ssn))", "INSERT INTO {n}_fk VALUES ('" + secretSSN + "')"}},
	{name: "add foreign key", steps: []string{"CREATE TABLE {n}_fk2 (v VARCHAR(50))", "ALTER TABLE {n}_fk2 ADD FOREIGN KEY (v) REFERENCES {c} (ssn)", "INSERT INTO {n}_fk2 VALUES ('" + secretSSN + "')"}},
	{name: "trigger", steps: []string{"CREATE TRIGGER {n}_tr BEFORE UPDATE ON {c} FOR EACH ROW SET NEW.name = IF(OLD.ssn LIKE '1%', 'y', 'n')", "UPDATE {c} SET name = 'z'", "SELECT name FROM {c}"}},
	{name: "rename table", steps: []string{"RENAME TABLE {c} TO {c}_r", "SELECT name FROM {c}_r WHERE ssn LIKE '1%'"}},
	{name: "alter table rename", steps: []string{"ALTER TABLE {c} RENAME TO {c}_r2", "SELECT name FROM {c}_r2 WHERE ssn LIKE '1%'"}},
	{name: "alter table order by", steps: []string{"ALTER TABLE {c} ENGINE = Aria", "ALTER TABLE {c} ORDER BY ssn"}},
	{name: "partition by the column", steps: []string{"ALTER TABLE {c} DROP PRIMARY KEY",
		"ALTER TABLE {c} PARTITION BY RANGE COLUMNS (ssn) (PARTITION p0 VALUES LESS THAN ('2'), PARTITION p1 VALUES LESS THAN (MAXVALUE))",
		"SELECT name FROM {c} PARTITION (p0)"}},
	// Adding the constraint fails when a row breaks it.
	{name: "check constraint", steps: []string{"ALTER TABLE {c} ADD CONSTRAINT {c}_chk CHECK (ssn NOT LIKE '1%')"}},
	{name: "unique over a prefix", steps: []string{"CREATE UNIQUE INDEX {c}_pfx ON {c} (ssn(1))"}},
	// The conversion fails (strict mode) on a value the charset cannot hold.
	{name: "convert charset", steps: []string{"ALTER TABLE {c} CONVERT TO CHARACTER SET ascii"}},
	// EXCHANGE PARTITION moves the rows into a table the rule does not name.
	{name: "exchange partition", steps: []string{"ALTER TABLE {c} DROP INDEX ssn", "ALTER TABLE {c} PARTITION BY HASH (id) PARTITIONS 1",
		"CREATE TABLE {c}_x (id INT PRIMARY KEY, name VARCHAR(50), ssn VARCHAR(50))", "ALTER TABLE {c} EXCHANGE PARTITION p0 WITH TABLE {c}_x",
		"SELECT name FROM {c}_x WHERE ssn LIKE '1%'"}},
}

// filterAttacksAllowed read ssn only as output: they run.
var filterAttacksAllowed = []filterCase{
	{name: "limit offset", steps: []string{"SELECT ssn FROM {c} ORDER BY id LIMIT 1 OFFSET 1"}},
	{name: "union all literal", steps: []string{"SELECT ssn FROM {c} UNION ALL SELECT '123'"}},
	{name: "star filtered on another column", steps: []string{"SELECT * FROM {c} WHERE name = 'ada'"}},
	{name: "alias named like itself", steps: []string{"SELECT ssn AS ssn FROM {c} ORDER BY id"}},
	// The inner {o} is the table others: its ssn is not the rule's.
	{name: "inner table hides outer alias", steps: []string{"SELECT name FROM {c} AS {o} WHERE EXISTS (SELECT 1 FROM {o} WHERE {o}.ssn LIKE '1%')"}},
	{name: "alias ordered by another column", steps: []string{"SELECT ssn AS s, name FROM {c} ORDER BY name"}},
}

// Attacks on filter: deny through the gateway and MariaDB: each is
// refused, and (to show it is a real statement) runs under an unmask
// grant; the allowed ones run and never show the value.
func TestRealFilterDenyAttacks(t *testing.T) {
	t.Parallel()
	fx := newFilterEnv(t)
	alice := fx.re.issue(t, person("alice", "engineers"))
	for _, tc := range filterAttacks {
		t.Run("refused/"+tc.name, func(t *testing.T) { fx.wantRefused(t, alice, tc.filterCase) })
	}
	for _, tc := range filterAttacksAllowed {
		t.Run("allowed/"+tc.name, func(t *testing.T) { fx.wantMasked(t, alice, tc) })
	}
	bob := fx.unmasked(t, "filter deny attacks")
	for _, tc := range filterAttacks {
		if tc.noGrant {
			continue
		}
		t.Run("granted/"+tc.name, func(t *testing.T) { fx.wantRuns(t, bob, tc.filterCase) })
	}
}

// Schema-changing attacks, each on its own tables (one that got through
// would change them for the next).
func TestRealFilterDenySchemaAttacks(t *testing.T) {
	t.Parallel()
	for _, tc := range filterSchemaAttacks {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFilterEnv(t)
			fx.wantRefused(t, fx.re.issue(t, person("alice", "engineers")), tc)
		})
	}
}
