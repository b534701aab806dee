package mask

import "testing"

// TestDetectorsUnicodeSeparators: card numbers and SSNs as people paste
// them from web pages and PDFs hold a no-break space, a thin space, a
// zero-width space or full-width digits; Go's \d and the separator classes
// are ASCII only, so the detectors (before and after the speed-up alike)
// pass them unmasked.
func TestDetectorsUnicodeSeparators(t *testing.T) {
	t.Skip("review finding: detectors are ASCII-only; Unicode spaces, zero-width characters and full-width digits hide a card number or SSN (normalize before matching, or map spans back)")
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
