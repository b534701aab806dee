package webhook_test

import (
	"context"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/mask"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/webhook"
)

// TestReviewClipBeforeRedact: a notification clips the statement (1000
// bytes in the JSON text, 200 in the summary); a value the clip would cut
// must be redacted whole first, or it no longer matches its detector and
// most of it goes out unredacted.
func TestReviewClipBeforeRedact(t *testing.T) {
	rules, err := mask.Compile([]config.MaskRule{{Detectors: []string{"us_ssn"}, Strategy: "redact"}})
	if err != nil {
		t.Fatal(err)
	}
	redact := func(b []byte) []byte { return rules.Text(nil, b) }
	cases := []struct{ name, text string }{
		{"json text clip at 1000", "UPDATE t SET note = '" + strings.Repeat("x", 1000-21-9) + "123-45-6789' WHERE id = 1"},
		{"summary clip at 200", "UPDATE t SET note = '" + strings.Repeat("x", 200-21-9) + "123-45-6789' WHERE id = 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t)
			n := webhook.New([]config.Webhook{{URL: rc.srv.URL}}, webhook.Options{Redact: redact})
			defer n.Close()
			n.Notify(context.Background(), someEvent(review.EventCreated, tc.text))
			body := string(rc.await(t, 1)[0].body)
			if i := strings.Index(body, "123-45-6"); i >= 0 {
				t.Fatalf("the SSN cut at the clip goes out unredacted: %s", body[max(0, i-5):min(len(body), i+12)])
			}
		})
	}
}

// TestReviewPasswordsInStatements: a held privilege statement that sets a
// password must reach the chat webhook without it (no detector finds a
// password; the PASSWORD / IDENTIFIED BY literals are masked), even with
// no redactor configured and the dialect not said.
func TestReviewPasswordsInStatements(t *testing.T) {
	for _, text := range []string{
		"CREATE ROLE app_reader LOGIN PASSWORD 'Tr0ub4dor&3-review'",
		"ALTER USER 'app'@'%' IDENTIFIED BY 'Tr0ub4dor&3-review'",
		"CREATE USER MAPPING FOR app SERVER remote OPTIONS (user 'app', password 'Tr0ub4dor&3-review')",
		"SET PASSWORD FOR 'app'@'%' = PASSWORD('Tr0ub4dor&3-review')",
		"GRANT SELECT ON db.* TO 'app'@'%' IDENTIFIED BY 'Tr0ub4dor&3-review'",
		"ALTER ROLE app PASSWORD 'Tr0ub4dor&3-review" + strings.Repeat("x", 1200) + "'",
	} {
		for _, format := range []string{"slack", "json"} {
			rc := newReceiver(t)
			n := webhook.New([]config.Webhook{{URL: rc.srv.URL, Format: format}}, webhook.Options{})
			n.Notify(context.Background(), someEvent(review.EventCreated, text))
			body := string(rc.await(t, 1)[0].body)
			n.Close()
			if strings.Contains(body, "Tr0ub4dor") {
				t.Errorf("the password of %q goes to the %s webhook: %s", text, format, body)
			}
		}
	}
}
