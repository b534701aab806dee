package mask

import (
	"fmt"
	"testing"

	"github.com/countersign/countersign/internal/config"
)

// Only a filter: deny rule that applies to one of the roles counts: the
// engines then trace filter uses, and the guard refuses untraced ones.
func TestDenyApplies(t *testing.T) {
	t.Parallel()
	roles := []string{"creator"}
	tests := []struct {
		rules []config.MaskRule
		want  bool
	}{
		{nil, false},
		{[]config.MaskRule{{Columns: []string{"*.ssn"}, Strategy: "redact"}}, false},
		{[]config.MaskRule{{Columns: []string{"*.ssn"}, Strategy: "redact", Filter: "deny"}}, true},
		{[]config.MaskRule{{Columns: []string{"*.ssn"}, Strategy: "redact", Filter: "deny", Roles: []string{"auditor"}}}, false},
		{[]config.MaskRule{{Columns: []string{"*.ssn"}, Strategy: "redact", Filter: "deny", Roles: []string{"auditor", "creator"}}}, true},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if got := DenyApplies(tc.rules, roles); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
