package cli

import (
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
)

// TestEventRedactorPasswords: the recording's (and the webhooks')
// redactor masks the password of a statement that sets one, with content
// detectors configured or not, and leaves every other event untouched (the
// same bytes, not re-encoded).
func TestEventRedactorPasswords(t *testing.T) {
	withSSN := &config.Config{Resources: []config.Resource{{Name: "pg", Policy: config.Policy{
		Masking: []config.MaskRule{{Detectors: []string{"us_ssn"}, Strategy: "redact"}}}}}}
	cases := []struct {
		name string
		cfg  *config.Config
		data string
		gone []string
		same bool
	}{
		{"pg role, no detectors", &config.Config{}, `{"text":"CREATE ROLE app LOGIN PASSWORD 'S3cr3t-xyz'","kind":"privilege"}`, []string{"S3cr3t"}, false},
		{"mysql user, no detectors", &config.Config{}, `{"text":"CREATE USER 'u'@'%' IDENTIFIED BY 'S3cr3t-xyz'"}`, []string{"S3cr3t"}, false},
		{"nested, with detectors", withSSN, `{"review":{"text":"ALTER ROLE app PASSWORD 'S3cr3t-xyz'"},"note":"ssn 123-45-6789"}`, []string{"S3cr3t", "123-45-6789"}, false},
		{"plain statement", &config.Config{}, `{"text":"UPDATE t SET a = 'x'"}`, nil, true},
		{"plain statement, with detectors", withSSN, `{"text":"UPDATE t SET a = 'x'"}`, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			redact := eventRedactor(tc.cfg)
			in := []byte(tc.data)
			out := redact(in)
			for _, g := range tc.gone {
				if strings.Contains(string(out), g) {
					t.Errorf("%s survives the redactor: %s", g, out)
				}
			}
			if tc.same && (len(out) != len(in) || &out[0] != &in[0]) {
				t.Errorf("an event with nothing to redact was rewritten: %s", out)
			}
			if !tc.same && !strings.Contains(string(out), "'********'") {
				t.Errorf("the statement lost more than its password: %s", out)
			}
		})
	}
}
