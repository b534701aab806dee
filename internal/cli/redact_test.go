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

// TestEventRedactorKeepsDigest: an operation's keyed digest is hex whose
// digit runs can pass for a card number (this one holds 3054278186200235,
// which the credit_card detector took); the redactor leaves the top-level
// digest whole and still masks a card anywhere else, including a nested
// "digest" field and a top-level one that is not a digest.
func TestEventRedactorKeepsDigest(t *testing.T) {
	cfg := &config.Config{Resources: []config.Resource{{Name: "pg", Policy: config.Policy{
		Masking: []config.MaskRule{{Detectors: []string{"credit_card"}, Strategy: "redact"}}}}}}
	const digest = "a7b3054278186200235fc82a0f9d88d1008e8888278327cffb4d483b7ade7e6a"
	const card = "4111111111111111"
	cases := []struct {
		name, data string
		kept, gone []string
	}{
		{"digest alone", `{"text":"SELECT 1","digest":"` + digest + `"}`, []string{digest}, nil},
		{"digest beside a card", `{"text":"SELECT '` + card + `'","digest":"` + digest + `"}`, []string{digest}, []string{card}},
		{"nested digest field", `{"digest":"` + digest + `","result":{"digest":"` + card + `"}}`, []string{digest}, []string{card}},
		{"top-level digest that is not one", `{"digest":"` + card + `"}`, nil, []string{card}},
	}
	redact := eventRedactor(cfg)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := string(redact([]byte(tc.data)))
			for _, k := range tc.kept {
				if !strings.Contains(out, k) {
					t.Errorf("%s was changed: %s", k, out)
				}
			}
			for _, g := range tc.gone {
				if strings.Contains(out, g) {
					t.Errorf("%s survives the redactor: %s", g, out)
				}
			}
		})
	}
}
