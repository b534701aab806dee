package lineage

import (
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/mask"
)

func compileRules(t *testing.T) *mask.Rules {
	t.Helper()
	rs, err := mask.Compile([]config.MaskRule{
		{Columns: []string{"public.customers.ssn"}, Strategy: "redact", Filter: "deny"},
		{Columns: []string{"*.email"}, Strategy: "redact"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}
