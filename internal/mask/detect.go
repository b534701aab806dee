package mask

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A Detector finds sensitive values inside free text.
type Detector struct {
	Name string
	// need and needAny name the signals (one pass over the value, shared
	// by every detector) that any match requires: all of need, one of
	// needAny. A value without them is skipped without a call, and most
	// values are not sensitive.
	need, needAny uint32
	// hint, when set, is a further test (a substring) for values that
	// have the signals. Signals and hint must be necessary conditions for
	// a match, never sufficient ones (FuzzDetectors checks).
	hint func(v []byte, sig uint32) bool
	re   *regexp.Regexp
	// notBefore and notAfter name the bytes that may not touch a match
	// (RE2 has no look-around, and consuming a boundary byte would hide an
	// adjacent match).
	notBefore, notAfter string
	// noDotDigitAfter refuses a match followed by "." and a digit: the
	// first four parts of a version string 1.2.3.4.5 are not an address.
	noDotDigitAfter bool
	// shrink: a match that fails is searched for a part that passes
	// (Detector.shrunk).
	shrink bool
	// valid filters regex matches (checksums, ranges, look-alikes).
	valid func(m []byte) bool
	// chars, when set, holds every byte a match can contain: the
	// expression then runs only over the maximal runs of such bytes that
	// are at least minLen long. A match cannot cross a byte outside the
	// set, so it finds the same matches while the ordinary text around
	// (words, dates next to prose) costs one table lookup a byte.
	chars  *[256]bool
	minLen int
}

// Find returns the [start, end) spans of every match in v, in order.
func (d *Detector) Find(v []byte) [][2]int {
	return d.find(v, withNormalized(v, signals(v)))
}

// withNormalized adds to sig the signals of v's normalized form when v has
// non-ASCII bytes, so that a detector is not skipped for a value whose
// digits or separators are Unicode look-alikes.
func withNormalized(v []byte, sig uint32) uint32 {
	if sig&sigNonASCII == 0 {
		return sig
	}
	if n, _, _, changed := normalize(v); changed {
		sig |= signals(n)
	}
	return sig
}

// may reports whether a value with these signals can hold a match.
func (d *Detector) may(v []byte, sig uint32) bool {
	return sig&d.need == d.need && (d.needAny == 0 || sig&d.needAny != 0) && (d.hint == nil || d.hint(v, sig))
}

// find is Find with v's signals already read (withNormalized's).
func (d *Detector) find(v []byte, sig uint32) [][2]int {
	if sig&sigNonASCII != 0 {
		if n, starts, ends, changed := normalize(v); changed {
			// Matched on the ASCII form, masked on the original bytes:
			// a card number typed with full-width digits or no-break
			// spaces is still a card number to whoever reads it.
			spans := d.findASCII(n, signals(n))
			for i, sp := range spans {
				spans[i] = [2]int{starts[sp[0]], ends[sp[1]-1]}
			}
			return spans
		}
	}
	return d.findASCII(v, sig)
}

// findASCII is find on bytes whose look-alikes are already normalized.
func (d *Detector) findASCII(v []byte, sig uint32) [][2]int {
	if !d.may(v, sig) {
		return nil
	}
	if d.chars == nil {
		return d.findIn(v, 0, len(v), nil)
	}
	var out [][2]int
	for i := 0; i < len(v); {
		if !d.chars[v[i]] {
			i++
			continue
		}
		j := i + 1
		for j < len(v) && d.chars[v[j]] {
			j++
		}
		if j-i >= d.minLen {
			out = d.findIn(v, i, j, out)
		}
		i = j
	}
	return out
}

// findIn appends the matches inside v[lo:hi]; the boundary checks look at
// the bytes of v around them.
func (d *Detector) findIn(v []byte, lo, hi int, out [][2]int) [][2]int {
	for pos := lo; pos < hi; {
		loc := d.re.FindIndex(v[pos:hi])
		if loc == nil {
			break
		}
		s, e := pos+loc[0], pos+loc[1]
		pos = max(e, s+1) // no expression matches empty; progress regardless
		if d.ok(v, s, e) {
			out = append(out, [2]int{s, e})
			continue
		}
		if d.shrink {
			if s2, e2, ok := d.shrunk(v, s, e); ok {
				out = append(out, [2]int{s2, e2})
				pos = e2
			}
		}
	}
	return out
}

// ok applies the boundary checks and valid to the match v[s:e].
func (d *Detector) ok(v []byte, s, e int) bool {
	if s > 0 && strings.IndexByte(d.notBefore, v[s-1]) >= 0 {
		return false
	}
	if e < len(v) && strings.IndexByte(d.notAfter, v[e]) >= 0 {
		return false
	}
	if d.noDotDigitAfter && e+1 < len(v) && v[e] == '.' && '0' <= v[e+1] && v[e+1] <= '9' {
		return false
	}
	return d.valid == nil || d.valid(v[s:e])
}

// shrunk looks inside a greedy match that failed for the longest, then
// leftmost, part of it that starts and ends at a space-separated group and
// passes: "4111 1111 1111 1111 123" (a card and its CVV) or
// "2 4111111111111111" would otherwise be one 19-digit number that fails
// the Luhn sum, and the card would pass unmasked.
func (d *Detector) shrunk(v []byte, s, e int) (int, int, bool) {
	best := [2]int{-1, -1}
	for i := s; i < e; i++ {
		if i > s && (v[i-1] != ' ' || !isDigit(v[i])) {
			continue
		}
		for j := e; j > i; j-- {
			if j < e && (v[j] != ' ' || !isDigit(v[j-1])) {
				continue
			}
			if (i != s || j != e) && j-i > best[1]-best[0] && d.ok(v, i, j) {
				best = [2]int{i, j}
			}
		}
	}
	return best[0], best[1], best[0] >= 0
}

// byteSet is the set of the bytes of s.
func byteSet(s string) *[256]bool {
	var t [256]bool
	for i := 0; i < len(s); i++ {
		t[s[i]] = true
	}
	return &t
}

const (
	digits  = "0123456789"
	letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	alnum   = digits + letters
)

var detectors = map[string]*Detector{}

func register(d *Detector) {
	if _, dup := detectors[d.Name]; dup {
		panic("mask: detector registered twice: " + d.Name) // programming error at init
	}
	detectors[d.Name] = d
}

// LookupDetector returns the named detector.
func LookupDetector(name string) (*Detector, error) {
	d, ok := detectors[name]
	if !ok {
		return nil, fmt.Errorf("unknown detector %q (known: %v)", name, DetectorNames())
	}
	return d, nil
}

// DetectorNames lists the registered detectors, sorted.
func DetectorNames() []string {
	out := make([]string, 0, len(detectors))
	for n := range detectors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Signals: facts about a value that one pass establishes for every
// detector (Detector.need).
const (
	sigAt         uint32 = 1 << iota // '@'
	sigDigits7                       // at least 7 ASCII digits
	sigDigits9                       // at least 9
	sigDigits13                      // at least 13
	sigDigitDash                     // 5-1
	sigPhoneSep                      // '+', '(', 5-1 or 5 1
	sigDigitDot                      // 5.1
	sigColons2                       // at least two ':'
	sigIBANStart                     // two capitals then two digits: a country code and check digits
	sigJ                             // 'J'
	sigA                             // 'A'
	sigK                             // 'K'
	sigDash                          // '-'
	sigUnderscore                    // '_'
	sigZ                             // 'z'
	sigNonASCII                      // a byte >= 0x80: see normalize
)

// byteSignals are the signals a single byte gives, and two bits that
// are not signals: the byte is a digit, or a colon.
var byteSignals = func() (t [256]uint32) {
	t['@'], t['+'], t['('] = sigAt, sigPhoneSep, sigPhoneSep
	t['-'], t['_'] = sigDash, sigUnderscore
	t['A'], t['J'], t['K'], t['z'] = sigA, sigJ, sigK, sigZ
	for b := '0'; b <= '9'; b++ {
		t[b] = byteDigit
	}
	t[':'] = byteColon
	for b := 0x80; b < 0x100; b++ {
		t[b] = sigNonASCII
	}
	return t
}()

const (
	byteDigit uint32 = 1 << 30
	byteColon uint32 = 1 << 31
)

// signals reads v once. It runs for every scanned value, so the common
// byte (a letter) costs a table lookup and a test; only at a digit does it
// look back.
func signals(v []byte) uint32 {
	var sig uint32
	digits, colons := 0, 0
	for i, b := range v {
		c := byteSignals[b]
		sig |= c
		if c&byteDigit == 0 {
			if c&byteColon != 0 {
				colons++
			}
			continue
		}
		digits++
		if i >= 2 && isDigit(v[i-2]) {
			switch v[i-1] {
			case '-':
				sig |= sigDigitDash | sigPhoneSep
			case ' ':
				sig |= sigPhoneSep
			case '.':
				sig |= sigDigitDot
			}
		}
		if i >= 3 && isDigit(v[i-1]) && isUpper(v[i-2]) && isUpper(v[i-3]) {
			sig |= sigIBANStart
		}
	}
	sig &^= byteDigit | byteColon
	if digits >= 7 {
		sig |= sigDigits7
	}
	if digits >= 9 {
		sig |= sigDigits9
	}
	if digits >= 13 {
		sig |= sigDigits13
	}
	if colons >= 2 {
		sig |= sigColons2
	}
	return sig
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }
func isUpper(b byte) bool { return 'A' <= b && b <= 'Z' }

func init() {
	register(&Detector{
		Name: "email",
		need: sigAt,
		re:   regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}`),
	})
	register(&Detector{
		Name:      "credit_card",
		need:      sigDigits13,
		re:        regexp.MustCompile(`(?:\d[ \-]?){12,18}\d`),
		notBefore: digits + "-", notAfter: digits + "-",
		chars: byteSet(digits + " -"), minLen: 13,
		valid: validCard, shrink: true,
	})
	register(&Detector{
		Name:      "us_ssn",
		need:      sigDigits9 | sigDigitDash,
		re:        regexp.MustCompile(`\d{3}-\d{2}-\d{4}`),
		notBefore: digits + "-", notAfter: digits + "-",
		chars: byteSet(digits + "-"), minLen: 11,
		valid: validSSN,
	})
	register(&Detector{
		Name:      "iban",
		need:      sigIBANStart,
		re:        regexp.MustCompile(`[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?`),
		notBefore: alnum, notAfter: alnum,
		chars: byteSet(digits + "ABCDEFGHIJKLMNOPQRSTUVWXYZ "), minLen: 12,
		valid: validIBAN,
	})
	register(&Detector{
		Name: "phone",
		// Not sigDigits7: "+1 555 01" matches with six digits. Every
		// alternative holds '+', '(', or a digit, '-' or ' ', and a digit.
		need:      sigPhoneSep,
		notBefore: alnum + ".+-", notAfter: alnum + ".-",
		chars: byteSet(digits + " -.+()"), minLen: 7,
		re: regexp.MustCompile(`(?:` +
			`\+[1-9]\d{7,14}` + // E.164
			`|\+[1-9]\d{0,2}[ \-.](?:\(?\d{1,4}\)?[ \-.]){1,4}\d{2,4}` + // +44 20 7946 0958
			`|\(\d{3}\) ?\d{3}[\-.]\d{4}` + // (555) 123-4567
			`|\d{3}-\d{3}-\d{4}` + // 555-123-4567
			`|0\d{2,4} \d{3,4} \d{3,4}` + // 020 7946 0958
			`)`),
	})
	register(&Detector{
		Name:      "ipv4",
		need:      sigDigitDot,
		re:        regexp.MustCompile(`(?:\d{1,3}\.){3}\d{1,3}`),
		notBefore: alnum + ".-", notAfter: alnum + "-", noDotDigitAfter: true,
		chars: byteSet(digits + "."), minLen: 7,
		valid: validIPv4,
	})
	register(&Detector{
		Name:      "ipv6",
		need:      sigColons2,
		re:        regexp.MustCompile(`[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?:\d{1,3}\.){3}\d{1,3})?`),
		notBefore: alnum + ":.", notAfter: alnum + ":",
		chars: byteSet(digits + "abcdefABCDEF:."), minLen: 3,
		valid: validIPv6,
	})
	register(&Detector{
		Name:  "jwt",
		need:  sigJ,
		hint:  func(v []byte, _ uint32) bool { return bytes.Contains(v, []byte("eyJ")) },
		re:    regexp.MustCompile(`eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*`),
		valid: validJWT,
	})
	register(&Detector{
		Name: "aws_access_key",
		need: sigA,
		// Every prefix of the expression, not only those holding "IA": an
		// AIDA, AROA or AGPA key has none, and the hint must never refuse
		// what the expression matches.
		hint: func(v []byte, _ uint32) bool {
			for _, p := range awsPrefixes {
				if bytes.Contains(v, p) {
					return true
				}
			}
			return false
		},
		re:        regexp.MustCompile(`(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z2-7]{16}`),
		notBefore: alnum, notAfter: alnum,
	})
	register(&Detector{
		Name: "pem_private_key",
		need: sigK | sigDash,
		hint: func(v []byte, _ uint32) bool { return bytes.Contains(v, []byte("PRIVATE KEY-----")) },
		re:   regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|$)`),
	})
	register(&Detector{
		Name:      "api_token",
		needAny:   sigUnderscore | sigDash | sigZ,
		hint:      hasTokenPrefix,
		notBefore: alnum + "_-", notAfter: alnum + "_-",
		re: regexp.MustCompile(`(?:` +
			`(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{30,}` +
			`|github_pat_[A-Za-z0-9_]{40,}` +
			`|xox[abposr]-[A-Za-z0-9\-]{20,}` +
			`|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{20,}` +
			`|sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{32,}` +
			`|glpat-[A-Za-z0-9_\-]{20,}` +
			`|npm_[A-Za-z0-9]{36}` +
			`|AIza[A-Za-z0-9_\-]{35}` +
			`|cst_[A-Za-z0-9_\-]{40,}` +
			`)`),
		valid: highEntropy,
	})
}

var awsPrefixes = [][]byte{
	[]byte("AKIA"), []byte("ASIA"), []byte("ABIA"), []byte("ACCA"), []byte("AGPA"), []byte("AIDA"),
	[]byte("AROA"), []byte("AIPA"), []byte("ANPA"), []byte("ANVA"), []byte("APKA"),
}

var tokenPrefixes = [][]byte{
	[]byte("gh"), []byte("github_pat_"), []byte("xox"), []byte("_live_"), []byte("_test_"),
	[]byte("sk-"), []byte("glpat-"), []byte("npm_"), []byte("AIza"), []byte("cst_"),
}

func hasTokenPrefix(v []byte, sig uint32) bool {
	// Every prefix but AIza holds '_' or '-': most text has neither, and
	// looking that up is cheaper than ten substring searches.
	if sig&(sigUnderscore|sigDash) == 0 {
		return bytes.Contains(v, []byte("AIza"))
	}
	for _, p := range tokenPrefixes {
		if bytes.Contains(v, p) {
			return true
		}
	}
	return false
}

func digitsOf(m []byte) []byte {
	d := make([]byte, 0, len(m))
	for _, b := range m {
		if '0' <= b && b <= '9' {
			d = append(d, b)
		}
	}
	return d
}

// validCard checks length and the Luhn sum, and refuses mixed separators.
func validCard(m []byte) bool {
	if bytes.IndexByte(m, ' ') >= 0 && bytes.IndexByte(m, '-') >= 0 {
		return false
	}
	d := digitsOf(m)
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if double {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return sum%10 == 0
}

// validSSN excludes what the SSA never issues: area 000, 666 and 900-999,
// group 00, serial 0000.
func validSSN(m []byte) bool {
	d := digitsOf(m)
	area := int(d[0]-'0')*100 + int(d[1]-'0')*10 + int(d[2]-'0')
	group := int(d[3]-'0')*10 + int(d[4]-'0')
	serial := string(d[5:])
	return area != 0 && area != 666 && area < 900 && group != 0 && serial != "0000"
}

// ibanLengths holds the IBAN length of common countries; others need
// 15..34 characters.
var ibanLengths = map[string]int{
	"AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18,
	"FR": 27, "GB": 22, "IE": 22, "IT": 27, "LU": 20, "NL": 18, "NO": 15, "PL": 28,
	"PT": 25, "SE": 24,
}

func validIBAN(m []byte) bool {
	s := bytes.ReplaceAll(m, []byte(" "), nil)
	if n, ok := ibanLengths[string(s[:2])]; ok && len(s) != n {
		return false
	}
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	r := append(append([]byte{}, s[4:]...), s[:4]...)
	rem := 0
	for _, c := range r {
		switch {
		case '0' <= c && c <= '9':
			rem = (rem*10 + int(c-'0')) % 97
		case 'A' <= c && c <= 'Z':
			v := int(c-'A') + 10
			rem = (rem*100 + v) % 97
		default:
			return false
		}
	}
	return rem == 1
}

func validIPv4(m []byte) bool {
	a, err := netip.ParseAddr(string(m))
	return err == nil && a.Is4()
}

func validIPv6(m []byte) bool {
	if bytes.Count(m, []byte(":")) < 2 {
		return false
	}
	a, err := netip.ParseAddr(string(m))
	return err == nil && a.Is6() && !a.IsUnspecified()
}

func validJWT(m []byte) bool {
	dot := bytes.IndexByte(m, '.')
	hdr, err := base64.RawURLEncoding.DecodeString(string(m[:dot]))
	return err == nil && bytes.HasPrefix(bytes.TrimSpace(hdr), []byte("{")) && bytes.Contains(hdr, []byte(`"alg"`))
}

// highEntropy keeps tokens whose characters look random (Shannon entropy of
// at least 3.5 bits a character), so `ghp_aaaaaaaa...` placeholders pass.
func highEntropy(m []byte) bool {
	var freq [256]int
	for _, b := range m {
		freq[b]++
	}
	h := 0.0
	n := float64(len(m))
	for _, f := range freq {
		if f > 0 {
			p := float64(f) / n
			h -= p * math.Log2(p)
		}
	}
	return h >= 3.5
}

// normalize maps the Unicode look-alikes that people paste from web pages
// and PDFs to the ASCII the detectors read: decimal digits of any script
// to 0-9, space separators (no-break, thin, ...) to ' ', dashes and the
// minus sign to '-', full-width ASCII (U+FF01-FF5E) to ASCII, and drops
// zero-width characters and soft hyphens. starts[i] and ends[i] are the
// byte span in v of the character that became n[i]. changed is false when
// nothing was mapped (n is then not built).
func normalize(v []byte) (n []byte, starts, ends []int, changed bool) {
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRune(v[i:])
		if _, ok := lookalike(r); ok || r >= 0x80 && size > 0 && isInvisible(r) {
			changed = true
			break
		}
		i += size
	}
	if !changed {
		return nil, nil, nil, false
	}
	n = make([]byte, 0, len(v))
	starts, ends = make([]int, 0, len(v)), make([]int, 0, len(v))
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRune(v[i:])
		switch a, ok := lookalike(r); {
		case ok:
			n, starts, ends = append(n, a), append(starts, i), append(ends, i+size)
		case isInvisible(r):
			// dropped: a match runs across it
		default:
			for k := range size {
				n, starts, ends = append(n, v[i+k]), append(starts, i), append(ends, i+size)
			}
		}
		i += size
	}
	return n, starts, ends, true
}

// lookalike is the ASCII byte a non-ASCII rune stands for, if any.
func lookalike(r rune) (byte, bool) {
	switch {
	case r < 0x80:
		return 0, false
	case r >= 0xFF01 && r <= 0xFF5E:
		return byte(r - 0xFEE0), true
	case unicode.Is(unicode.Nd, r):
		return '0' + byte(digitValue(r)), true
	case unicode.Is(unicode.Zs, r):
		return ' ', true
	case unicode.Is(unicode.Pd, r) || r == '\u2212' || r == '\u2011':
		return '-', true
	}
	return 0, false
}

// digitValue is the value of a decimal digit of any script: Unicode puts
// each script's digits 0-9 in a row, and every run of unicode.Nd starts at
// a zero, so the value is the distance from the run's start modulo 10.
func digitValue(r rune) int {
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return int(r-rune(rg.Lo)) % 10
		}
	}
	return 0
}

// isInvisible: characters that render as nothing, so a value can hide a
// number behind them.
func isInvisible(r rune) bool {
	switch r {
	case '\u00AD', '\u200B', '\u200C', '\u200D', '\u2060', '\uFEFF':
		return true
	}
	return false
}
