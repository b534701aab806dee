package config_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and it
// either returns a complete config or errors that each name the file. The
// committed corpus (testdata/fuzz/FuzzParse) holds the DESIGN.md sample, the
// example and broken variants of them.
func FuzzParse(f *testing.F) {
	f.Add([]byte(designSample))
	for _, tc := range badFiles {
		f.Add([]byte(tc.yaml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("countersign.yaml", data)
		if err != nil {
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) == 0 || len(errs) > 101 {
				t.Fatalf("not a bounded config.Errors: %#v", err)
			}
			for _, e := range errs {
				if e.File != "countersign.yaml" || e.Msg == "" {
					t.Fatalf("error without file or message: %#v", e)
				}
			}
			return
		}
		if c.Path == "" || !filepath.IsAbs(c.DataDir) {
			t.Fatalf("incomplete config: path %q, data dir %q", c.Path, c.DataDir)
		}
		if !strings.HasPrefix(c.Store, "sqlite://") && !strings.HasPrefix(c.Store, "postgres") {
			t.Fatalf("store %q passed validation", c.Store)
		}
		for _, r := range c.Resources {
			if r.Policy.Review.Approvals < 1 || r.UpstreamTLS.Mode == "" {
				t.Fatalf("resource %q not defaulted: %+v", r.Name, r)
			}
		}
	})
}
