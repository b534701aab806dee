package sqlkind

import "testing"

// TestCopyIn: only COPY ... FROM STDIN is marked, alone or among other
// statements; the guard refuses it without a write grant.
func TestCopyIn(t *testing.T) {
	p := NewPostgres(PostgresOptions{})
	tests := []struct {
		text string
		want bool
		kind Kind
	}{
		{"COPY t FROM STDIN", true, Write},
		{"copy t (a) from stdin with (format csv)", true, Write},
		{"SELECT 1; COPY t FROM STDIN", true, Write},
		{"COPY t TO STDOUT", false, Read},
		{"COPY (SELECT 1) TO STDOUT", false, Read},
		{"COPY t FROM '/etc/passwd'", false, Unknown},
		{"COPY t FROM PROGRAM 'id'", false, Unknown},
		{"INSERT INTO t VALUES (1)", false, Write},
	}
	for _, tt := range tests {
		for range 2 { // the second answer comes from the cache
			c := p.Classify(tt.text)
			if c.CopyIn != tt.want || c.Kind != tt.kind {
				t.Fatalf("%q: CopyIn %v kind %v; want %v %v", tt.text, c.CopyIn, c.Kind, tt.want, tt.kind)
			}
		}
	}
}
