package mysql

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	gomy "github.com/go-sql-driver/mysql"
)

func TestLoadDataLocal(t *testing.T) {
	ev := newEnv(t, nil)
	path := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(path, []byte("101,carol,c@example.com\n102,dan,\\N\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gomy.RegisterLocalFile(path)
	defer gomy.DeregisterLocalFile(path)
	db := ev.open(t, "my-test", "")
	stmt := "LOAD DATA LOCAL INFILE '" + path + "' INTO TABLE people FIELDS TERMINATED BY ','"

	ev.g.setRule(denyIf("LOAD DATA"))
	if _, err := db.Exec(stmt); err == nil || !strings.Contains(err.Error(), "1142") {
		t.Fatalf("denied LOAD DATA: %v", err)
	}
	ev.g.setRule(nil)
	res, err := db.Exec(stmt)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("rows = %d", n)
	}
	var cnt int
	if err := db.QueryRow("SELECT COUNT(*) FROM people WHERE id > 100").Scan(&cnt); err != nil || cnt != 2 {
		t.Fatalf("count %d %v", cnt, err)
	}
	if _, err := db.Exec("DELETE FROM people WHERE id > 100"); err != nil {
		t.Fatal(err)
	}
}
