package pgmask

import (
	"bytes"
	"encoding/hex"
	"regexp"
	"strconv"
)

// textExtras returns what a text-format value hides from the detectors as
// PostgreSQL writes it, decoded one part a line: hex bytea (\x3431...,
// also inside an array, a composite or json), a float in exponent form
// (4.111111111111111e+15) and an amount grouped beside a currency sign
// ($4,111,111,111,111,111.00). nil when the value holds none of them,
// which is most values: each is looked for only after a byte it needs.
func textExtras(v []byte) []byte {
	var out []byte
	if bytes.IndexByte(v, '\\') >= 0 {
		out = hexRuns(v, out)
	}
	if bytes.IndexByte(v, '+') >= 0 {
		// A negative exponent writes a number below 1e-4, whose digits
		// the text shows already.
		out = exponents(v, out)
	}
	if hasCurrency(v) {
		out = amounts(v, out)
	}
	return out
}

// hasCurrency: one of the signs amounts looks for (not ContainsAny, which
// decodes every rune of the value).
func hasCurrency(v []byte) bool {
	if bytes.IndexByte(v, '$') >= 0 {
		return true
	}
	if bytes.IndexByte(v, 0xE2) >= 0 && bytes.Contains(v, []byte("€")) {
		return true
	}
	return bytes.IndexByte(v, 0xC2) >= 0 && (bytes.Contains(v, []byte("£")) || bytes.Contains(v, []byte("¥")))
}

// textView is what the detectors read of a text-format value of a type
// that is not text: bytea's bytes (its text is hex, or escaped), money's
// amount without its grouping, or the text with its extras.
func textView(oid uint32, v []byte) []byte {
	switch oid {
	case 17:
		return byteaBytes(v)
	case 790:
		if c, err := strconv.ParseInt(string(digitsOnly(v)), 10, 64); err == nil {
			return append(append(append([]byte(nil), v...), '\n'), moneyText(c)...)
		}
	}
	if ex := textExtras(v); ex != nil {
		return append(append(append([]byte(nil), v...), '\n'), ex...)
	}
	return v
}

// byteaBytes decodes bytea's text output: hex (\x...) or escape format.
func byteaBytes(v []byte) []byte {
	if bytes.HasPrefix(v, []byte(`\x`)) {
		out := make([]byte, hex.DecodedLen(len(v)-2))
		n, _ := hex.Decode(out, v[2:])
		return out[:n]
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		switch {
		case v[i] != '\\' || i+1 == len(v):
			out = append(out, v[i])
		case v[i+1] == '\\':
			out = append(out, '\\')
			i++
		case i+3 < len(v) && isOctal(v[i+1]) && isOctal(v[i+2]) && isOctal(v[i+3]):
			out = append(out, (v[i+1]-'0')<<6|(v[i+2]-'0')<<3|(v[i+3]-'0'))
			i += 3
		default:
			out = append(out, v[i])
		}
	}
	return out
}

func isOctal(b byte) bool { return '0' <= b && b <= '7' }
func isDigit(b byte) bool { return '0' <= b && b <= '9' }

func isHex(b byte) bool {
	return isDigit(b) || ('a' <= b && b <= 'f') || ('A' <= b && b <= 'F')
}

func digitsOnly(v []byte) []byte {
	var out []byte
	for _, b := range v {
		if isDigit(b) {
			out = append(out, b)
		}
	}
	return out
}

// hexRuns decodes every run of hex digits after `\x` (bytea's hex
// output, however many backslashes quote it; `\X` after upper()).
func hexRuns(v, out []byte) []byte {
	for i := 0; i+3 < len(v); i++ {
		if v[i] != '\\' || (v[i+1] != 'x' && v[i+1] != 'X') {
			continue
		}
		j := i + 2
		for j < len(v) && isHex(v[j]) {
			j++
		}
		if n := (j - i - 2) &^ 1; n >= 2 {
			b := make([]byte, n/2)
			_, _ = hex.Decode(b, v[i+2:i+2+n])
			out = append(append(out, b...), '\n')
		}
		i = j - 1
	}
	return out
}

// exponents writes every number in exponent form (float4out and
// float8out's form beyond 15 digits) without its exponent.
func exponents(v, out []byte) []byte {
	for i := 1; i+2 < len(v); i++ {
		if v[i] != 'e' || v[i+1] != '+' || !isDigit(v[i+2]) || !isDigit(v[i-1]) {
			continue
		}
		start := i
		for start > 0 && (isDigit(v[start-1]) || v[start-1] == '.') {
			start--
		}
		end := i + 2
		for end < len(v) && isDigit(v[end]) {
			end++
		}
		if f, err := strconv.ParseFloat(string(v[start:end]), 64); err == nil {
			out = append(append(out, plainFloat(f, 64)...), '\n')
		}
		i = end - 1
	}
	return out
}

// An amount as money writes it under any lc_monetary: digits grouped by
// three, beside a currency sign.
var (
	amountAfterSign  = regexp.MustCompile(`[$€£¥]\s?-?(\d{1,3}(?:[,.' \x{a0}\x{202f}]\d{3})+)`)
	amountBeforeSign = regexp.MustCompile(`(\d{1,3}(?:[,.' \x{a0}\x{202f}]\d{3})+)(?:[.,]\d+)?\s?[$€£¥]`)
)

// amounts writes every grouped amount's integer digits.
func amounts(v, out []byte) []byte {
	for _, re := range []*regexp.Regexp{amountAfterSign, amountBeforeSign} {
		for _, m := range re.FindAllSubmatchIndex(v, -1) {
			out = append(append(out, digitsOnly(v[m[2]:m[3]])...), '\n')
		}
	}
	return out
}
