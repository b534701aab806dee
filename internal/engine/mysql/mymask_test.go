package mysql

import (
	"database/sql"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
)

const secretSSN = "ssn-secret-1"

var maskRules = []config.MaskRule{
	{Columns: []string{"*.ssn"}, Strategy: "redact"},
	{Columns: []string{"*.pin"}, Strategy: "redact"},
	{Detectors: []string{"email"}, Strategy: "redact"},
}

// maskEnv is a resource with masking rules whose reads and writes need no
// review, and a table with a masked text column (ssn), a masked number
// (pin) and an email only the detectors know. Schemas other than the
// test database that the resource may use can be listed.
func maskEnv(t *testing.T, otherSchemas ...string) (*realEnv, *sql.DB, string) {
	t.Helper()
	res := realResource("my-mask", "reject", maskRules)
	res.Policy.Review.Kinds = []string{"privilege", "admin"}
	if len(otherSchemas) > 0 {
		res.Schemas = append([]string{testDB}, otherSchemas...)
	}
	re := newRealEnv(t, res)
	table := "masked_" + randHex(3)
	if err := adminExec(
		fmt.Sprintf("CREATE TABLE %s.%s (id INT PRIMARY KEY, name VARCHAR(50), ssn VARCHAR(50) UNIQUE, pin INT, email VARCHAR(80) UNIQUE)", testDB, table),
		fmt.Sprintf("INSERT INTO %s.%s VALUES (1, 'ada', '%s', 1234, 'ada@example.com')", testDB, table, secretSSN),
		fmt.Sprintf("CREATE VIEW %s.%s_v AS SELECT id, ssn AS contact, name FROM %s.%s", testDB, table, testDB, table),
	); err != nil {
		t.Fatal(err)
	}
	return re, re.login(t, person("alice", "engineers"), "my-mask"), table
}

// The dodge table of the masking issue, in MySQL's dialect, through the
// text protocol (COM_QUERY) and, prepared, the binary protocol.
func TestMaskDodges(t *testing.T) {
	t.Parallel()
	_, db, tb := maskEnv(t)
	tests := []struct {
		name, query string
		want        []any // nil: NULL
	}{
		{"plain", "SELECT ssn FROM %s", []any{"****"}},
		{"alias", "SELECT ssn AS harmless FROM %s", []any{"****"}},
		{"table alias", "SELECT x.ssn FROM %s x", []any{"****"}},
		{"expression", "SELECT upper(ssn) FROM %s", []any{"****"}},
		{"concat", "SELECT concat(name, '-', ssn) FROM %s", []any{"****"}},
		{"qualified join", "SELECT lower(a.ssn), b.name FROM %s a JOIN %[1]s b ON a.id = b.id", []any{"****", "ada"}},
		{"subquery", "SELECT (SELECT ssn FROM %s LIMIT 1)", []any{"****"}},
		{"derived table", "SELECT x FROM (SELECT ssn AS x FROM %s) d", []any{"****"}},
		{"cte", "WITH c AS (SELECT ssn AS x FROM %s) SELECT x FROM c", []any{"****"}},
		{"union", "SELECT name FROM %s WHERE 0 UNION SELECT ssn FROM %[1]s", []any{"****"}},
		{"view", "SELECT contact, name FROM %s_v", []any{"****", "ada"}},
		{"number masked is NULL", "SELECT pin, pin + 1 FROM %s", []any{nil, nil}},
		{"detector", "SELECT email, concat('mail: ', email) FROM %s", []any{"****", "mail: ****"}},
		{"unmasked", "SELECT name, upper(name), id + 1 FROM %s", []any{"ada", "ADA", "2"}},
		{"constants", "SELECT 1 + 1, 'x', @@version_comment IS NOT NULL", []any{"2", "x", "1"}},
		{"json_object", "SELECT JSON_OBJECT('s', ssn) FROM %s", []any{"****"}},
		{"json_arrayagg", "SELECT JSON_ARRAYAGG(ssn) FROM %s", []any{"****"}},
		{"group_concat", "SELECT GROUP_CONCAT(name, ssn SEPARATOR '|') FROM %s", []any{"****"}},
		{"cast", "SELECT CAST(ssn AS BINARY), CAST(pin AS CHAR) FROM %s", []any{"****", "****"}},
		{"case", "SELECT CASE WHEN id = 1 THEN ssn ELSE name END FROM %s", []any{"****"}},
		{"coalesce and if", "SELECT COALESCE(NULL, ssn), IF(1, ssn, 'n') FROM %s", []any{"****", "****"}},
		{"hex and reverse", "SELECT HEX(ssn), REVERSE(ssn), SUBSTRING(ssn, 2) FROM %s", []any{"****", "****", "****"}},
		{"aggregate", "SELECT MAX(ssn), MIN(pin) FROM %s", []any{"****", nil}},
		{"derived star", "SELECT * FROM (SELECT ssn FROM %s) d", []any{"****"}},
		{"cte star", "WITH c AS (SELECT pin FROM %s) SELECT * FROM c", []any{nil}},
		{"variable", "SELECT @v := ssn FROM %s", []any{"****"}},
		{"exists subquery", "SELECT (SELECT GROUP_CONCAT(ssn) FROM %s) AS g", []any{"****"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.query
			if strings.Contains(q, "%") {
				q = fmt.Sprintf(q, tb)
			}
			got := queryRow(t, db, q)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("text protocol: %s: got %v, want %v", q, got, tc.want)
			}
			// The same statement prepared: binary-protocol rows.
			got = preparedRow(t, db, q)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("binary protocol: %s: got %v, want %v", q, got, tc.want)
			}
		})
	}
}

// preparedRow is queryRow through COM_STMT_PREPARE / COM_STMT_EXECUTE
// (binary-protocol rows), even without parameters.
func preparedRow(t *testing.T, db *sql.DB, q string) []any {
	t.Helper()
	st, err := db.Prepare(q)
	if err != nil {
		t.Fatalf("prepare %s: %v", q, err)
	}
	defer st.Close()
	rows, err := st.Query()
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	return scanFirst(t, rows, q)
}

// SELECT * and the binary protocol (prepared statements): a masked text
// value is re-encoded, a masked number becomes NULL in the rebuilt bitmap.
func TestMaskStarAndBinaryProtocol(t *testing.T) {
	t.Parallel()
	_, db, tb := maskEnv(t)
	want := "[1 ada **** <nil> ****]"
	if got := queryRow(t, db, "SELECT * FROM "+tb); fmt.Sprint(got) != want {
		t.Fatalf("text SELECT *: %v", got)
	}
	if got := queryRow(t, db, "SELECT * FROM "+tb+" WHERE id = ?", 1); fmt.Sprint(got) != want {
		t.Fatalf("binary SELECT *: %v", got)
	}
	if got := queryRow(t, db, "SELECT upper(ssn), pin, id, name FROM "+tb+" WHERE name = ?", "ada"); fmt.Sprint(got) != "[**** <nil> 1 ada]" {
		t.Fatalf("binary: %v", got)
	}
}

// An error message quoting a value (duplicate key) is masked.
func TestMaskErrorMessages(t *testing.T) {
	t.Parallel()
	_, db, tb := maskEnv(t)
	for _, q := range []string{
		fmt.Sprintf("INSERT INTO %s (id, ssn) VALUES (2, '%s')", tb, secretSSN),
		fmt.Sprintf("INSERT INTO %s (id, email) VALUES (3, 'ada@example.com')", tb),
	} {
		_, err := db.Exec(q)
		if err == nil || !strings.Contains(err.Error(), "Duplicate entry") {
			t.Fatalf("%s: %v", q, err)
		}
		if strings.Contains(err.Error(), secretSSN) || strings.Contains(err.Error(), "ada@example.com") {
			t.Fatalf("the error shows the value: %v", err)
		}
	}
}

// The real mariadb client sees masked values too.
func TestMaskMariadbClient(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatal("the mariadb client is needed: apt-get install mariadb-client")
	}
	re, _, tb := maskEnv(t)
	secret := re.issue(t, person("alice", "engineers"))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	der := serverTLS.Certificates[0].Certificate[0]
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port := splitAddr(t, re.addr)
	out, err := exec.Command(bin, "--no-defaults", "-h", host, "-P", port, "-u", "my-mask", "--password="+secret,
		"--ssl", "--ssl-ca="+ca, "--ssl-verify-server-cert", "--batch", "-e",
		"SELECT ssn, upper(ssn) AS u, name, email FROM "+tb+"; SELECT * FROM "+tb+"_v", testDB).CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb: %v\n%s", err, out)
	}
	// A view's columns are traced through its definition: contact is ssn.
	want := "ssn\tu\tname\temail\n****\t****\tada\t****\nid\tcontact\tname\n1\t****\tada\n"
	if string(out) != want {
		t.Fatalf("mariadb output:\n%s\nwant:\n%s", out, want)
	}
}

// queryRow returns the first row's values as strings (nil for NULL).
func queryRow(t *testing.T, db *sql.DB, q string, args ...any) []any {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	return scanFirst(t, rows, q)
}

// scanFirst returns the first row's values as strings (nil for NULL).
func scanFirst(t *testing.T, rows *sql.Rows, q string) []any {
	t.Helper()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("%s: no row (%v)", q, rows.Err())
	}
	raw := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	out := make([]any, len(cols))
	for i, r := range raw {
		if r != nil {
			out[i] = string(r)
		}
	}
	return out
}
