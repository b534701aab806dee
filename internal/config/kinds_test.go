package config_test

import (
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/sqlkind"
)

// TestKnownKinds keeps the kinds a config accepts equal to sqlkind's.
func TestKnownKinds(t *testing.T) {
	t.Parallel()
	for _, name := range config.KnownKinds {
		k, ok := sqlkind.ParseKind(name)
		if !ok || k.String() != name {
			t.Errorf("config kind %q is not a sqlkind.Kind", name)
		}
	}
	for k := sqlkind.Unknown; k <= sqlkind.Admin; k++ {
		found := false
		for _, name := range config.KnownKinds {
			found = found || name == k.String()
		}
		if !found {
			t.Errorf("sqlkind.%v is missing from config.KnownKinds", k)
		}
	}
}
