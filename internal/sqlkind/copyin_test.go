package sqlkind

import "testing"

// TestCopyIn: the statements whose rows arrive after the decision are
// marked, alone or among other statements, in any spelling the server
// runs; the guard refuses them without a write grant. PostgreSQL: COPY ...
// FROM STDIN. MySQL: LOAD DATA LOCAL INFILE (the client picks the file's
// content); LOAD DATA INFILE of a server file stays unknown, and LOAD XML
// (which TiDB's grammar lacks) is unknown with no statement the engine
// would pass a file request for.
func TestCopyIn(t *testing.T) {
	pg := NewPostgres(PostgresOptions{})
	my := NewMySQL(MySQLOptions{})
	tests := []struct {
		dialect Dialect
		text    string
		want    bool
		kind    Kind
	}{
		{Postgres, "COPY t FROM STDIN", true, Write},
		{Postgres, "copy t (a) from stdin with (format csv)", true, Write},
		{Postgres, "SELECT 1; COPY t FROM STDIN", true, Write},
		{Postgres, "COPY t TO STDOUT", false, Read},
		{Postgres, "COPY (SELECT 1) TO STDOUT", false, Read},
		{Postgres, "COPY t FROM '/etc/passwd'", false, Unknown},
		{Postgres, "COPY t FROM PROGRAM 'id'", false, Unknown},
		{Postgres, "INSERT INTO t VALUES (1)", false, Write},
		{MySQL, "LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t", true, Write},
		{MySQL, "load data low_priority local infile '/tmp/x.csv' replace into table t fields terminated by ','", true, Write},
		{MySQL, "SELECT 1; LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t", true, Write},
		{MySQL, "/*!50000 LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t */", true, Write},
		{MySQL, "LOAD DATA /*!50000 LOCAL */ INFILE '/tmp/x.csv' INTO TABLE t", true, Unknown},
		{MySQL, "LOAD DATA INFILE '/tmp/x.csv' INTO TABLE t", false, Unknown},
		{MySQL, "LOAD XML LOCAL INFILE '/tmp/x.xml' INTO TABLE t", false, Unknown},
		{MySQL, "INSERT INTO t VALUES (1)", false, Write},
	}
	for _, tt := range tests {
		classify := pg.Classify
		if tt.dialect == MySQL {
			classify = my.Classify
		}
		for range 2 { // the second answer comes from the cache
			c := classify(tt.text)
			if c.CopyIn != tt.want || c.Kind != tt.kind {
				t.Fatalf("%q: CopyIn %v kind %v; want %v %v", tt.text, c.CopyIn, c.Kind, tt.want, tt.kind)
			}
		}
		if tt.dialect == MySQL && !tt.want {
			for _, s := range my.Statements(tt.text) {
				if s.LoadLocal {
					t.Fatalf("%q: a LoadLocal statement the engine would pass a file request for", tt.text)
				}
			}
		}
	}
}
