package mysql

import (
	"database/sql"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
)

// A value computed from a masked column is masked whole whatever the
// rule's strategy: under partial keep_last, REVERSE(ssn) showed the
// value's first characters, and a hash of REPLACE(ssn, guess, ”) equals
// the hash of ” exactly when the guess is right. A stored value read as
// it is keeps the rule's strategy.
func TestMaskDerivedValuesWhole(t *testing.T) {
	for _, strategy := range []config.MaskRule{
		{Columns: []string{"*.ssn"}, Strategy: "partial", KeepLast: 4},
		{Columns: []string{"*.ssn"}, Strategy: "hash", HashKey: []byte("0123456789abcdef0123456789abcdef")},
	} {
		t.Run(strategy.Strategy, func(t *testing.T) {
			text, binary, table := attackEnv(t, []config.MaskRule{strategy}, "write", "schema", "privilege", "admin")
			for _, db := range []struct {
				name string
				q    func(string) (string, error)
			}{{"text", queryOne(text)}, {"binary", queryOne(binary)}} {
				for _, q := range []string{"SELECT REVERSE(ssn) FROM " + table, "SELECT CONCAT(ssn, '') FROM " + table,
					"SELECT REPLACE(ssn, '" + secretSSN + "', '') FROM " + table, "SELECT UPPER(x) FROM (SELECT ssn AS x FROM " + table + ") d"} {
					got, err := db.q(q)
					if err != nil || got != "****" {
						t.Errorf("%s (%s): %q (%v), want the whole value masked", q, db.name, got, err)
					}
				}
				got, err := db.q("SELECT ssn FROM " + table)
				if err != nil || got == "****" || strings.Contains(got, secretSSN) {
					t.Errorf("stored ssn (%s): %q (%v), want the %s form", db.name, got, err, strategy.Strategy)
				}
			}
		})
	}
}

// queryOne returns a query's first value as text ("NULL" for NULL).
func queryOne(db *sql.DB) func(string) (string, error) {
	return func(q string) (string, error) {
		var v sql.NullString
		err := db.QueryRow(q).Scan(&v)
		if !v.Valid {
			return "NULL", err
		}
		return v.String, err
	}
}
