package mask

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/countersign/countersign/internal/config"
)

// TestDetectorsUnicodeSeparators: card numbers and SSNs as people paste
// them from web pages and PDFs hold a no-break space, a thin space, a
// zero-width space or full-width digits; Go's \d and the separator classes
// are ASCII only, so the detectors (before and after the speed-up alike)
// pass them unmasked.
func TestDetectorsUnicodeSeparators(t *testing.T) {
	tests := []struct{ detector, text string }{
		{"credit_card", "4111\u00a01111\u00a01111\u00a01111"},
		{"credit_card", "4111\u20091111\u20091111\u20091111"},
		{"credit_card", "4111\u200b1111\u200b1111\u200b1111"},
		{"credit_card", "４１１１１１１１１１１１１１１１"},
		{"us_ssn", "219\u201109\u20119999"}, // non-breaking hyphen
		{"email", "alice\uff20corp.io"},     // full-width @
	}
	for _, tt := range tests {
		d, err := LookupDetector(tt.detector)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Find([]byte(tt.text))) == 0 {
			t.Errorf("%s: %q not found", tt.detector, tt.text)
		}
	}
}

// TestTextUnicodeLookalikes: through the rules, with every strategy, a
// value written with Unicode look-alikes comes out with none of its
// digits (in any script) and still valid UTF-8; text around it is kept.
func TestTextUnicodeLookalikes(t *testing.T) {
	values := []string{
		"card 4111\u00a01111\u00a01111\u00a01111 ok",
		"card ４１１１１１１１１１１１１１１１ ok",
		"card 4111\u200b1111\u200b1111\u200b1111 ok",
		"ssn 219\u201109\u20119999 ok",
		"card \u0664\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661\u0661 ok", // Arabic-Indic
	}
	for _, strategy := range []string{"redact", "partial", "hash", "null", "fixed"} {
		r := config.MaskRule{Detectors: []string{"credit_card", "us_ssn"}, Strategy: strategy, KeepLast: 4, Fixed: "X"}
		if strategy == "hash" {
			r.HashKey = []byte("0123456789abcdef0123456789abcdef")
		}
		rs, err := Compile([]config.MaskRule{r})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range values {
			out := string(rs.Text(nil, []byte(v)))
			if !utf8.ValidString(out) {
				t.Errorf("%s: %q became invalid UTF-8: %q", strategy, v, out)
			}
			if !strings.HasPrefix(out, v[:4]) || !strings.HasSuffix(out, " ok") {
				t.Errorf("%s: %q lost its surrounding text: %q", strategy, v, out)
			}
			digits := 0
			for _, c := range out {
				if unicode.IsDigit(c) {
					digits++
				}
			}
			if limit := 4; digits > limit && strategy != "hash" {
				t.Errorf("%s: %q kept %d digits: %q", strategy, v, digits, out)
			}
			if out == v {
				t.Errorf("%s: %q passed unmasked", strategy, v)
			}
		}
	}
}
