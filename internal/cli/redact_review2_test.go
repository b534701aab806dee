package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
)

// TestEventRedactorEscapes: the redactor's "nothing found" shortcut runs
// the detectors over the event's JSON encoding, where a newline, a tab or
// an HTML-escaped '<' '>' '&' become "\n", "\t", "\u003e": letters that
// touch the value and make a detector with a word boundary (phone, ipv4,
// aws_access_key, api_token, iban) refuse it. The statement text then
// reached the recording unmasked.
func TestEventRedactorEscapes(t *testing.T) {
	cfg := &config.Config{Resources: []config.Resource{{Name: "pg", Policy: config.Policy{
		Masking: []config.MaskRule{{Detectors: []string{"phone", "ipv4", "aws_access_key"}, Strategy: "redact"}}}}}}
	redact := eventRedactor(cfg)
	cases := []struct{ text, secret string }{
		{"INSERT INTO cfg VALUES ('<key>AKIAIOSFODNN7EXAMPLE</key>')", "AKIAIOSFODNN7EXAMPLE"},
		{"INSERT INTO hosts VALUES ('<ip>10.1.2.3</ip>')", "10.1.2.3"},
		{"SELECT * FROM users WHERE phone =\n+14155552671", "14155552671"},
		{"INSERT INTO notes VALUES ('servers:\n10.1.2.3')", "10.1.2.3"},
		{"INSERT INTO notes VALUES ('a&AKIAIOSFODNN7EXAMPLE')", "AKIAIOSFODNN7EXAMPLE"},
	}
	for _, tc := range cases {
		data, err := json.Marshal(map[string]string{"text": tc.text})
		if err != nil {
			t.Fatal(err)
		}
		out := redact(data)
		var got map[string]string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q: redacted event does not decode: %v", tc.text, err)
		}
		if strings.Contains(got["text"], tc.secret) {
			t.Errorf("%q: %s reached the recording: %s", tc.text, tc.secret, out)
		}
	}
}
