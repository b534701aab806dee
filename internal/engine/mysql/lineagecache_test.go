package mysql

import "testing"

// Texts share a cached lineage only when they are in the same schema and
// differ in nothing but the small integer literals the classifier's key
// replaces; a text without a key is its own key, and can never be taken
// for another text's key.
func TestLineageKey(t *testing.T) {
	tests := []struct {
		name       string
		a, b       string // texts
		sa, sb     string // schemas
		wantShared bool
	}{
		{"other id", "SELECT c FROM t WHERE id = 1", "SELECT c FROM t WHERE id = 22", "db", "db", true},
		{"same text", "SELECT c FROM t", "SELECT c FROM t", "db", "db", true},
		{"other schema", "SELECT c FROM t WHERE id = 1", "SELECT c FROM t WHERE id = 1", "a", "b", false},
		{"schema boundary", "SELECT 1", "SELECT 1", "a:", "a", false},
		{"other column", "SELECT c FROM t WHERE id = 1", "SELECT d FROM t WHERE id = 1", "db", "db", false},
		{"string literal", "SELECT 'a' FROM t", "SELECT 'b' FROM t", "db", "db", false},
		{"qualified digits", "SELECT c FROM db.t1", "SELECT c FROM db.t2", "db", "db", false},
		{"comment", "SELECT c FROM t WHERE id = 1 /* x */", "SELECT c FROM t WHERE id = 2 /* x */", "db", "db", false},
		{"text that looks like a key", "SELECT c FROM t WHERE id = \x00n", "SELECT c FROM t WHERE id = 1", "db", "db", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ka, kb := lineageKey(tt.a, tt.sa), lineageKey(tt.b, tt.sb)
			if (ka == kb) != tt.wantShared {
				t.Errorf("keys %q and %q: shared = %v, want %v", ka, kb, ka == kb, tt.wantShared)
			}
		})
	}
}
