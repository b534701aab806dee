package mysql

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/recording"
)

// attackPin is the masked number of attackEnv's table: distinctive
// enough that finding it in an output means it leaked.
const attackPin = "918273"

// attackEnv is maskEnv's table on a resource whose review covers the
// given kinds (none: nothing is reviewed, so an unknown statement runs at
// once, as it would once approved: masking must hold all the same). It
// returns two single-connection pools of one person: text protocol
// (interpolateParams: arguments are sent inside COM_QUERY) and binary
// protocol (arguments make a server-side prepared statement).
func attackEnv(t *testing.T, rules []config.MaskRule, kinds ...string) (text, binary *sql.DB, table string) {
	t.Helper()
	res := realResource("my-attack", "reject", rules)
	res.Policy.Review.Kinds = kinds
	re, table := attackResource(t, res)
	secret := re.issue(t, person("alice", "engineers"))
	open := func(extra string) *sql.DB {
		db, err := sql.Open("mysql", fmt.Sprintf("my-attack:%s@tcp(%s)/%s?tls=cs&allowCleartextPasswords=true%s", secret, re.addr, testDB, extra))
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1) // user variables and warnings live in the session
		t.Cleanup(func() { db.Close() })
		return db
	}
	return open("&interpolateParams=true"), open(""), table
}

// attackResource starts a gateway for the resource and makes the table
// of the attacks: a masked text (ssn), a masked number (pin) and an email
// only the detectors know.
func attackResource(t *testing.T, res config.Resource) (*realEnv, string) {
	t.Helper()
	re := newRealEnv(t, res)
	table := "attack_" + randHex(3)
	if err := adminExec(
		fmt.Sprintf("CREATE TABLE %s.%s (id INT PRIMARY KEY, name VARCHAR(50), ssn VARCHAR(50) UNIQUE, pin INT, email VARCHAR(80))", testDB, table),
		fmt.Sprintf("INSERT INTO %s.%s VALUES (1, 'ada', '%s', %s, 'ada@example.com')", testDB, table, secretSSN, attackPin),
	); err != nil {
		t.Fatal(err)
	}
	return re, table
}

// attackRules mask ssn and pin by name and emails by detector.
var attackRules = []config.MaskRule{
	{Columns: []string{"*.ssn", "*.pin"}, Strategy: "redact"},
	{Detectors: []string{"email"}, Strategy: "redact"},
}

// attack is a chain of statements run on one connection; the last one
// may take arguments. Every output (values and error texts) of every
// step must be free of the secrets; want, if set, must appear in the
// last step's output (so that the attack really ran).
type attack struct {
	name  string
	steps []string
	args  []any
	want  string
	leak  string // another text that must not appear
}

// outputOf runs q and returns everything it showed: column values, or the
// error's text.
func outputOf(db *sql.DB, q string, args ...any) string {
	rows, err := db.Query(q, args...)
	if err != nil {
		return "error: " + err.Error()
	}
	defer rows.Close()
	return rowsText(rows)
}

// rowsText is a result as a person sees it: the column names, then the
// values.
func rowsText(rows *sql.Rows) string {
	cols, _ := rows.Columns()
	var b strings.Builder
	b.WriteString(strings.Join(cols, "|") + "\n")
	for rows.Next() {
		raw := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return "error: " + err.Error()
		}
		for _, r := range raw {
			b.Write(r)
			b.WriteByte('|')
		}
		b.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		b.WriteString("error: " + err.Error())
	}
	return b.String()
}

// preparedOutputOf is outputOf through COM_STMT_PREPARE and
// COM_STMT_EXECUTE (binary-protocol rows); ok is false when MariaDB
// cannot prepare that statement (ER_UNSUPPORTED_PS).
func preparedOutputOf(db *sql.DB, q string, args ...any) (string, bool) {
	st, err := db.Prepare(q)
	if err != nil {
		if strings.Contains(err.Error(), "Error 1295") {
			return "", false
		}
		return "error: " + err.Error(), true
	}
	defer st.Close()
	rows, err := st.Query(args...)
	if err != nil {
		return "error: " + err.Error(), true
	}
	defer rows.Close()
	return rowsText(rows), true
}

// nativeHash is the mysql_native_password hash MariaDB stores (and SHOW
// GRANTS prints) for a password, without its leading '*'.
func nativeHash(pw string) string {
	h := sha1.Sum([]byte(pw))
	h = sha1.Sum(h[:])
	return strings.ToUpper(hex.EncodeToString(h[:]))
}

func runAttacks(t *testing.T, text, binary *sql.DB, table string, attacks []attack) {
	t.Helper()
	for _, a := range attacks {
		for _, p := range []struct {
			proto string
			db    *sql.DB
		}{{"text", text}, {"binary", binary}} {
			var all, outs, last string
			for i, s := range a.steps {
				s = strings.ReplaceAll(s, "TBL", table)
				var args []any
				if i == len(a.steps)-1 {
					args = a.args
				}
				ok := true
				if i == len(a.steps)-1 && p.proto == "binary" {
					last, ok = preparedOutputOf(p.db, s, args...)
				} else {
					last = outputOf(p.db, s, args...)
				}
				if !ok {
					last = "" // not preparable: the text run covered it
					break
				}
				all += s + " => " + last + "\n"
				outs += last
			}
			if strings.Contains(outs, secretSSN) || strings.Contains(outs, attackPin) || (a.leak != "" && strings.Contains(outs, a.leak)) {
				t.Errorf("%s (%s protocol): a masked value leaked:\n%s", a.name, p.proto, all)
			}
			if a.want != "" && (last != "" || p.proto == "text") && !strings.Contains(last, a.want) {
				t.Errorf("%s (%s protocol): the last step did not show %q:\n%s", a.name, p.proto, a.want, all)
			}
		}
	}
}

// Reads only, no review: values carried out of a masked column by user
// variables, session settings, warnings and EXPLAIN.
func TestMaskAttackReadChains(t *testing.T) {
	t.Parallel()
	text, binary, table := attackEnv(t, attackRules, "write", "schema", "privilege", "admin")
	runAttacks(t, text, binary, table, []attack{
		{name: "user_variables table", want: "****", args: []any{"x"}, steps: []string{
			"SET @x := (SELECT ssn FROM TBL)",
			"SELECT VARIABLE_VALUE FROM information_schema.USER_VARIABLES WHERE VARIABLE_NAME = ?"}},
		{name: "user_variables star", want: "****", steps: []string{
			"SET @y := (SELECT pin FROM TBL)",
			"SELECT * FROM information_schema.USER_VARIABLES"}},
		{name: "user_variables expression", want: "****", steps: []string{
			"SELECT 1 FROM TBL WHERE (@z := ssn) IS NOT NULL",
			"SELECT concat(VARIABLE_VALUE, ''), upper(v.VARIABLE_VALUE) FROM information_schema.USER_VARIABLES v"}},
		{name: "user_variables derived table", want: "****", steps: []string{
			"SET @w := (SELECT ssn FROM TBL)",
			"SELECT val FROM (SELECT VARIABLE_VALUE AS val FROM information_schema.user_variables) d"}},
		{name: "user_variables aggregated", want: "****", steps: []string{
			"SET @u := (SELECT ssn FROM TBL)",
			"SELECT JSON_OBJECTAGG(VARIABLE_NAME, VARIABLE_VALUE), GROUP_CONCAT(VARIABLE_VALUE) FROM information_schema.USER_VARIABLES"}},
		{name: "user_variables in a union", want: "****", steps: []string{
			"SET @u := (SELECT ssn FROM TBL)",
			"SELECT name FROM TBL UNION ALL SELECT VARIABLE_VALUE FROM information_schema.USER_VARIABLES"}},
		{name: "user_variables in a subquery", want: "****", steps: []string{
			"SET @u := (SELECT pin FROM TBL)",
			"SELECT (SELECT MAX(VARIABLE_VALUE) FROM information_schema.USER_VARIABLES) AS v"}},
		{name: "processlist info", want: "****", steps: []string{
			"SELECT INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE '%" + secretSSN + "%'"}},
		{name: "show processlist info", want: "****", steps: []string{
			"SHOW FULL PROCESSLIST"}},
		{name: "warning of a cast", want: "Truncated incorrect", steps: []string{
			"SELECT CAST(ssn AS SIGNED) FROM TBL",
			"SHOW WARNINGS"}},
		{name: "warning of a comparison", want: "Truncated incorrect", steps: []string{
			"SELECT id FROM TBL WHERE id = ssn",
			"SHOW WARNINGS"}},
		{name: "warning of a function", want: "Incorrect datetime value", steps: []string{
			"SELECT STR_TO_DATE(ssn, '%Y') FROM TBL",
			"SHOW WARNINGS"}},
		{name: "error list", steps: []string{
			"SELECT CAST(ssn AS SIGNED) FROM TBL",
			"SHOW ERRORS"}},
		{name: "explain json", want: "****", steps: []string{
			"EXPLAIN FORMAT=JSON SELECT b.id FROM TBL a JOIN TBL b ON b.name = a.ssn WHERE a.id = 1"}},
		{name: "explain json, then warnings", steps: []string{
			"EXPLAIN FORMAT=JSON SELECT ssn, pin FROM TBL WHERE id = 1",
			"SHOW WARNINGS"}},
		{name: "setting carries a number", steps: []string{
			"SET SESSION max_join_size = (SELECT pin FROM TBL)",
			"SELECT @@max_join_size, @@session.max_join_size"}},
		{name: "setting shown by SHOW VARIABLES", steps: []string{
			"SET max_join_size = (SELECT pin FROM TBL)",
			"SHOW VARIABLES LIKE 'max_join_size'"}},
		{name: "setting in session_variables", steps: []string{
			"SET max_join_size = (SELECT pin FROM TBL)",
			"SELECT VARIABLE_VALUE FROM information_schema.SESSION_VARIABLES WHERE VARIABLE_NAME = 'MAX_JOIN_SIZE'"}},
		{name: "setting from a user variable", steps: []string{
			"SET @p := (SELECT pin FROM TBL)",
			"SET sort_buffer_size = @p * 1024",
			"SELECT @@sort_buffer_size DIV 1024"}},
		{name: "password hash in SHOW GRANTS", want: "PASSWORD '****'", leak: nativeHash(userPass), steps: []string{
			"SHOW GRANTS"}},
		{name: "password hash in SHOW CREATE USER", want: "PASSWORD '****'", leak: nativeHash(userPass), steps: []string{
			"SHOW CREATE USER CURRENT_USER"}},
		{name: "time zone error", steps: []string{
			"SET time_zone = (SELECT ssn FROM TBL)"}},
	})
}

// Unknown statements, unreviewed here as they would be once approved:
// error texts that quote a value from a user variable, a procedure's
// SIGNAL, or a setting's refusal.
func TestMaskAttackErrorTexts(t *testing.T) {
	t.Parallel()
	text, binary, table := attackEnv(t, attackRules)
	proc := "sig_" + randHex(3)
	if err := adminExec(fmt.Sprintf("CREATE PROCEDURE %s.%s() BEGIN DECLARE v VARCHAR(50); SELECT ssn INTO v FROM %s.%s LIMIT 1; "+
		"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = v; END", testDB, proc, testDB, table)); err != nil {
		t.Fatal(err)
	}
	runAttacks(t, text, binary, table, []attack{
		{name: "signal from a user variable", want: "error", steps: []string{
			"SELECT ssn INTO @v FROM TBL",
			"SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @v"}},
		{name: "signal in a procedure", want: "error", steps: []string{
			"CALL " + proc + "()"}},
		{name: "prepare from a user variable", want: "syntax", steps: []string{
			"SELECT ssn INTO @v FROM TBL",
			"PREPARE s FROM @v"}},
		{name: "execute immediate", want: "syntax", steps: []string{
			"SELECT ssn INTO @v FROM TBL",
			"EXECUTE IMMEDIATE @v"}},
		{name: "time zone", want: "time zone", steps: []string{
			"SET time_zone = (SELECT ssn FROM TBL)"}},
		{name: "locale", want: "locale", steps: []string{
			"SET lc_time_names = (SELECT ssn FROM TBL)"}},
		{name: "explain extended, then warnings", steps: []string{
			"EXPLAIN EXTENDED SELECT ssn, pin FROM TBL WHERE id = 1",
			"SHOW WARNINGS"}},
		{name: "diagnostics into a variable", want: "****", steps: []string{
			"SELECT CAST(ssn AS SIGNED) FROM TBL",
			"GET DIAGNOSTICS CONDITION 1 @m = MESSAGE_TEXT",
			"SELECT @m, (SELECT VARIABLE_VALUE FROM information_schema.USER_VARIABLES WHERE VARIABLE_NAME = 'm')"}},
		{name: "column name from a variable", want: "****", steps: []string{
			"SELECT ssn INTO @v FROM TBL",
			"EXECUTE IMMEDIATE CONCAT('SELECT ', QUOTE(@v))"}},
		{name: "column alias from a variable", want: "****", steps: []string{
			"SELECT ssn, pin INTO @v, @p FROM TBL",
			"PREPARE s FROM CONCAT('SELECT 2 AS `', @v, '`, 3 AS `', @p, '`')",
			"EXECUTE s"}},
		{name: "table alias from a variable", steps: []string{
			"SELECT ssn INTO @v FROM TBL",
			"EXECUTE IMMEDIATE CONCAT('SELECT id FROM TBL AS `', @v, '`')"}},
		{name: "handler read", want: "****", steps: []string{
			"HANDLER TBL OPEN",
			"HANDLER TBL READ FIRST"}},
		{name: "duplicate key names the key", want: "for key", steps: []string{
			"INSERT INTO TBL (id, ssn) SELECT id + 100, ssn FROM TBL"}},
	})
}

// Detectors read numbers in the form a person reads them, whatever
// protocol and type carry them: a card number in a DOUBLE (whose text
// form has an exponent) or in a BIT(64) (sent as raw bytes).
func TestMaskAttackDetectorNumberForms(t *testing.T) {
	t.Parallel()
	rules := []config.MaskRule{{Detectors: []string{"credit_card", "us_ssn", "email"}, Strategy: "redact"}}
	text, binary, table := attackEnv(t, rules, "write", "schema", "privilege", "admin")
	const card = "4111111111111111"
	if err := adminExec(
		fmt.Sprintf("CREATE TABLE %s.%s_n (id INT PRIMARY KEY, f DOUBLE, bt BIT(64), d DECIMAL(20,0), bi BIGINT, j JSON, vb VARBINARY(40), b BLOB)", testDB, table),
		fmt.Sprintf("INSERT INTO %s.%s_n VALUES (1, %s, %s, %s, %s, JSON_OBJECT('c', '123-45-6789'), 'a@example.com', '%s')", testDB, table, card, card, card, card, card),
	); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SELECT f, bt, d, bi, j, vb, b FROM " + table + "_n WHERE id = ?",
		"SELECT f * 1, CAST(bi AS DOUBLE), bt | 0, CAST(d AS DOUBLE) FROM " + table + "_n WHERE id = ?",
		"SELECT CONCAT(f), JSON_OBJECT('c', f), JSON_ARRAY(CAST(bi AS DOUBLE)), CAST(f AS CHAR) FROM " + table + "_n WHERE id = ?",
	} {
		for proto, db := range map[string]*sql.DB{"text": text, "binary": binary} {
			out := outputOf(db, q, 1)
			if strings.Contains(out, "error") || !strings.Contains(out, "|") {
				t.Fatalf("%s (%s): %s", q, proto, out)
			}
			for _, leak := range []string{card, "4.111111111111111e+15", "4.111111111111111e15", "123-45-6789", "a@example.com", "\x00\x0e\x9b\x08\xa5\x68\xf1\xc7"} {
				if strings.Contains(out, leak) {
					t.Errorf("%s (%s protocol): %q not masked: %q", q, proto, leak, out)
				}
			}
		}
	}
}

// Message redaction, without a server: names and the statement's own text
// stay, values go, and a value holding quotes cannot shift what is shown.
func TestRedactMessage(t *testing.T) {
	const schema = "app"
	tests := []struct {
		name      string
		code      uint16
		msg, text string
		want      string
	}{
		{"unknown column", 1054, "Unknown column 'nme' in 'SELECT'", "SELECT nme FROM t", ""},
		{"field list", 1054, "Unknown column 'x.nme' in 'field list'", "SELECT x.nme FROM t x", ""},
		{"missing table, schema-qualified", 1146, "Table 'app.nope' doesn't exist", "SELECT * FROM nope", ""},
		{"syntax error near the text", 1064, "You have an error in your SQL syntax; check the manual near 'FROM WHERE' at line 1", "SELECT FROM WHERE", ""},
		{"syntax error near a variable", 1064, "You have an error in your SQL syntax; check the manual near 'ssn-secret-1' at line 1", "PREPARE s FROM @v",
			"You have an error in your SQL syntax; check the manual near '****' at line 1"},
		{"setting from a column", 1298, "Unknown or incorrect time zone: 'ssn-secret-1'", "SET time_zone = (SELECT ssn FROM t)",
			"Unknown or incorrect time zone: '****'"},
		{"a piece of a word is not text", 1298, "Unknown or incorrect time zone: '5'", "SET time_zone = (SELECT pin FROM t5)",
			"Unknown or incorrect time zone: '****'"},
		{"duplicate of a typed value", 1062, "Duplicate entry 'x1' for key 'u'", "INSERT INTO t (u) VALUES ('x1')",
			"Duplicate entry '****' for key 'u'"},
		{"duplicate holding quotes", 1062, "Duplicate entry 'a' for key 'b' x' for key 'u'", "INSERT INTO t (u) SELECT a FROM s",
			"Duplicate entry '****' for key 'u'"},
		{"value holding quotes around shown words", 1298, "Unknown or incorrect time zone: 'ssn' secret 'ssn'", "SET time_zone = (SELECT ssn FROM t)",
			"Unknown or incorrect time zone: '****'"},
		{"value holding a quote", 1298, "Unknown or incorrect time zone: 'ssn' secret'", "SET time_zone = (SELECT ssn FROM t)",
			"Unknown or incorrect time zone: '****'"},
		{"name from a value", 1146, "Table 'app.ssn-secret-1' doesn't exist", "EXECUTE IMMEDIATE @v",
			"Table '****' doesn't exist"},
		{"name error holding a stray quote", 1054, "Unknown column 'nme' x' in 'SELECT'", "SELECT nme FROM t",
			"Unknown column '****'"},
		{"signal", 1644, "ssn-secret-1", "CALL p()", "****"},
		{"explain extended note", 1003, "select 918273 AS `pin` from `app`.`t` where 1", "SHOW WARNINGS", "****"},
		{"no quotes", 4025, "CONSTRAINT `t.c` failed for `app`.`t`", "INSERT INTO t SELECT * FROM s", ""},
		{"truncation of a typed value", 1292, "Truncated incorrect INTEGER value: 'abc'", "SELECT CAST('abc' AS SIGNED)",
			"Truncated incorrect INTEGER value: '****'"},
		{"empty", 1105, "", "SELECT 1", ""},
		{"lone quote", 1105, "'", "SELECT 1", "'****'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == "" {
				want = tc.msg
			}
			if got := string(redactMessage(tc.code, []byte(tc.msg), tc.text, schema)); got != want {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		})
	}
}

// Numbers in exponent form inside text, written out for the detectors.
func TestExponentForms(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"c": 4.111111111111111e15}`, "4111111111111111\n"},
		{"POINT(4.1e+3 2E2)", "4100\n200\n"},
		{"the end", ""},
		{"e15 x1e", ""},
		{"1e", ""},
	}
	for _, tc := range tests {
		if got := string(exponentForms([]byte(tc.in))); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The views the detectors read of text-protocol numbers.
func TestTextView(t *testing.T) {
	tests := []struct {
		name string
		c    Column
		v    string
		want string // "": none
	}{
		{"double with exponent", Column{Type: 0x05}, "4.111111111111111e+15", "4111111111111111"},
		{"double plain", Column{Type: 0x05}, "12.5", ""},
		{"float", Column{Type: 0x04}, "1e+10", "10000000000"},
		{"double not a number", Column{Type: 0x05}, "e", ""},
		{"bit(64)", Column{Type: 0x10}, "\x00\x0e\x9b\x08\xa5\x68\xf1\xc7", "4111111111111111"},
		{"bit(1)", Column{Type: 0x10}, "\x01", "1"},
		{"varchar", Column{Type: 0xfd}, "4.1e+15", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(textView(tc.c, []byte(tc.v))); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// The mariadb client with --show-warnings runs SHOW WARNINGS after each
// statement itself: the warning of a cast quotes the masked value, and a
// user variable loaded from a masked column is listed by
// information_schema.USER_VARIABLES.
func TestMaskAttackMariadbClient(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatal("the mariadb client is needed: apt-get install mariadb-client")
	}
	res := realResource("my-attack-cli", "reject", attackRules)
	res.Policy.Review.Kinds = []string{"write", "schema", "privilege", "admin"}
	re, table := attackResource(t, res)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	der := serverTLS.Certificates[0].Certificate[0]
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, re.addr)
	script := fmt.Sprintf("SELECT CAST(ssn AS SIGNED) AS n FROM %[1]s; SET @x := (SELECT ssn FROM %[1]s); "+
		"SELECT VARIABLE_VALUE FROM information_schema.USER_VARIABLES WHERE VARIABLE_NAME = 'x'; "+
		"EXPLAIN FORMAT=JSON SELECT b.id FROM %[1]s a JOIN %[1]s b ON b.ssn = a.ssn WHERE a.id = 1", table)
	out, err := exec.Command(bin, "--no-defaults", "-h", host, "-P", port, "-u", "my-attack-cli",
		"--password="+re.issue(t, person("alice", "engineers")), "--ssl", "--ssl-ca="+ca, "--ssl-verify-server-cert",
		"--batch", "--show-warnings", "-e", script, testDB).CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb: %v\n%s", err, out)
	}
	want := "n\nNULL\nWarning (Code 1292): Truncated incorrect INTEGER value: '****'\n" +
		"VARIABLE_VALUE\n****\nEXPLAIN\n****\n"
	if string(out) != want {
		t.Fatalf("mariadb output:\n%s\nwant:\n%s", out, want)
	}
}

// The recording's copy of results (record.results) is masked as the
// client's: column names built from data at run time, warnings quoting a
// value, user variables listed by information_schema.
func TestMaskAttackRecordedResults(t *testing.T) {
	t.Parallel()
	res := realResource("my-attack-rec", "reject", attackRules)
	res.Policy.Review.Kinds = nil
	res.Record.Results = 5
	re, table := attackResource(t, res)
	db := re.login(t, person("alice", "engineers"), "my-attack-rec")
	steps := []string{
		"USE " + testDB,
		"SELECT ssn, pin INTO @v, @p FROM " + table,
		"EXECUTE IMMEDIATE CONCAT('SELECT 1 AS `', @v, '`, 2 AS `', @p, '`')",
		"SELECT CAST(ssn AS SIGNED) FROM " + table,
		"SHOW WARNINGS",
		"SELECT VARIABLE_VALUE FROM information_schema.USER_VARIABLES",
	}
	for _, s := range steps {
		if out := outputOf(db, s); strings.Contains(out, secretSSN) || strings.Contains(out, attackPin) {
			t.Fatalf("%s: %s", s, out)
		}
	}
	db.Close()
	waitFor(t, func() bool {
		outcomes := 0
		ws, _ := re.st.Writers(context.Background())
		for _, w := range ws {
			evs, _ := re.st.Events(context.Background(), w, 0, 0)
			for _, e := range evs {
				if strings.Contains(string(e.Data), secretSSN) || strings.Contains(string(e.Data), attackPin) {
					t.Fatalf("the trail holds a masked value: %s", e.Data)
				}
				if e.Type == recording.TypeOperationOutcome {
					outcomes++
				}
			}
		}
		return outcomes >= len(steps)
	})
}

// renameColumn rewrites exactly the names keep refuses; the catalog and
// the fixed fields stay as they were.
func TestRenameColumn(t *testing.T) {
	def := func(names ...string) []byte {
		p := appendLenenc(nil, 3)
		p = append(p, "def"...)
		for _, n := range names {
			p = appendLenenc(p, uint64(len(n)))
			p = append(p, n...)
		}
		return append(p, 0x0c, 0x21, 0x00, 0x10, 0x00, 0x00, 0x00, 0xfd, 0x00, 0x00, 0x00, 0x00, 0x00)
	}
	secret := func(s string) bool { return s != secretSSN }
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"all kept", def("app", "t", "t", "id", "id"), def("app", "t", "t", "id", "id")},
		{"name", def("", "", "", secretSSN, ""), def("", "", "", "****", "")},
		{"alias and table", def("app", secretSSN, "t", secretSSN, "ssn"), def("app", "****", "t", "****", "ssn")},
		{"truncated", def("app", "t")[:6], nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := renameColumn(tc.in, secret, "****")
			if string(got) != string(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if got != nil {
				if _, ok := parseColumn(got); !ok {
					t.Fatalf("the rewritten definition does not parse: %q", got)
				}
			}
		})
	}
}

// SHOW GRANTS and SHOW CREATE USER lose every quoted string.
func TestRedactStrings(t *testing.T) {
	tests := []struct{ in, want string }{
		{"GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*8D30'", "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '****'"},
		{"CREATE USER `u`@`%` IDENTIFIED VIA ed25519 USING 'k' OR mysql_native_password USING 'h'", "CREATE USER `u`@`%` IDENTIFIED VIA ed25519 USING '****' OR mysql_native_password USING '****'"},
		{"no strings", "no strings"},
		{"open 'never closed", "open '****'"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := string(redactStrings([]byte(tc.in))); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}
