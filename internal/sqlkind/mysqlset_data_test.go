package sqlkind

import "testing"

// A session setting set from a column, a subquery or a user variable can
// be read back (SELECT @@max_join_size, SHOW VARIABLES) as a value of no
// table, past the masking of the column it came from: it needs review.
// Constants stay reads.
func TestMySQLSettingFromData(t *testing.T) {
	c := NewMySQL(MySQLOptions{})
	tests := []struct {
		text string
		want Kind
	}{
		{"SET max_join_size = (SELECT pin FROM t)", Unknown},
		{"SET SESSION sort_buffer_size = @p * 1024", Unknown},
		{"SET time_zone = (SELECT tz FROM t LIMIT 1)", Unknown},
		{"SET lc_time_names = IF(EXISTS (SELECT 1 FROM t), 'de_DE', 'en_US')", Unknown},
		{"SET @x := (SELECT ssn FROM t)", Read},
		{"SET max_join_size = 1000000", Read},
		{"SET sort_buffer_size = 1024 * 1024", Read},
		{"SET time_zone = '+00:00'", Read},
		{"SET autocommit = ON", Read},
		{"SET max_join_size = @@max_join_size", Read},
	}
	for _, tc := range tests {
		if got := c.Classify(tc.text).Kind; got != tc.want {
			t.Errorf("%s: %v, want %v", tc.text, got, tc.want)
		}
	}
}
