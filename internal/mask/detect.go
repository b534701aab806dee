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
)

// A Detector finds sensitive values inside free text.
type Detector struct {
	Name string
	// hint is a cheap byte test: text without it cannot match, so the
	// regular expression is skipped (most values are not sensitive).
	hint func([]byte) bool
	re   *regexp.Regexp
	// notBefore and notAfter name the bytes that may not touch a match
	// (RE2 has no look-around, and consuming a boundary byte would hide an
	// adjacent match).
	notBefore, notAfter string
	// noDotDigitAfter refuses a match followed by "." and a digit: the
	// first four parts of a version string 1.2.3.4.5 are not an address.
	noDotDigitAfter bool
	// valid filters regex matches (checksums, ranges, look-alikes).
	valid func(m []byte) bool
}

// Find returns the [start, end) spans of every match in v, in order.
func (d *Detector) Find(v []byte) [][2]int {
	if d.hint != nil && !d.hint(v) {
		return nil
	}
	var out [][2]int
	for _, loc := range d.re.FindAllIndex(v, -1) {
		s, e := loc[0], loc[1]
		if s > 0 && strings.IndexByte(d.notBefore, v[s-1]) >= 0 {
			continue
		}
		if e < len(v) && strings.IndexByte(d.notAfter, v[e]) >= 0 {
			continue
		}
		if d.noDotDigitAfter && e+1 < len(v) && v[e] == '.' && '0' <= v[e+1] && v[e+1] <= '9' {
			continue
		}
		if d.valid == nil || d.valid(v[s:e]) {
			out = append(out, [2]int{s, e})
		}
	}
	return out
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

func has(b byte) func([]byte) bool {
	return func(v []byte) bool { return bytes.IndexByte(v, b) >= 0 }
}

func hasDigits(n int) func([]byte) bool {
	return func(v []byte) bool {
		c := 0
		for _, b := range v {
			if '0' <= b && b <= '9' {
				if c++; c >= n {
					return true
				}
			}
		}
		return false
	}
}

func init() {
	register(&Detector{
		Name: "email",
		hint: has('@'),
		re:   regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}`),
	})
	register(&Detector{
		Name:      "credit_card",
		hint:      hasDigits(13),
		re:        regexp.MustCompile(`(?:\d[ \-]?){12,18}\d`),
		notBefore: digits + "-", notAfter: digits + "-",
		valid: validCard,
	})
	register(&Detector{
		Name:      "us_ssn",
		hint:      hasDigits(9),
		re:        regexp.MustCompile(`\d{3}-\d{2}-\d{4}`),
		notBefore: digits + "-", notAfter: digits + "-",
		valid: validSSN,
	})
	register(&Detector{
		Name:      "iban",
		hint:      hasDigits(4),
		re:        regexp.MustCompile(`[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?`),
		notBefore: alnum, notAfter: alnum,
		valid: validIBAN,
	})
	register(&Detector{
		Name:      "phone",
		hint:      hasDigits(7),
		notBefore: alnum + ".+-", notAfter: alnum + ".-",
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
		hint:      has('.'),
		re:        regexp.MustCompile(`(?:\d{1,3}\.){3}\d{1,3}`),
		notBefore: alnum + ".-", notAfter: alnum + "-", noDotDigitAfter: true,
		valid: validIPv4,
	})
	register(&Detector{
		Name:      "ipv6",
		hint:      has(':'),
		re:        regexp.MustCompile(`[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?:\d{1,3}\.){3}\d{1,3})?`),
		notBefore: alnum + ":.", notAfter: alnum + ":",
		valid: validIPv6,
	})
	register(&Detector{
		Name:  "jwt",
		hint:  func(v []byte) bool { return bytes.Contains(v, []byte("eyJ")) },
		re:    regexp.MustCompile(`eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*`),
		valid: validJWT,
	})
	register(&Detector{
		Name:      "aws_access_key",
		hint:      func(v []byte) bool { return bytes.Contains(v, []byte("IA")) || bytes.Contains(v, []byte("ACCA")) },
		re:        regexp.MustCompile(`(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z2-7]{16}`),
		notBefore: alnum, notAfter: alnum,
	})
	register(&Detector{
		Name: "pem_private_key",
		hint: func(v []byte) bool { return bytes.Contains(v, []byte("PRIVATE KEY-----")) },
		re:   regexp.MustCompile(`-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|$)`),
	})
	register(&Detector{
		Name:      "api_token",
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

var tokenPrefixes = [][]byte{
	[]byte("gh"), []byte("github_pat_"), []byte("xox"), []byte("_live_"), []byte("_test_"),
	[]byte("sk-"), []byte("glpat-"), []byte("npm_"), []byte("AIza"), []byte("cst_"),
}

func hasTokenPrefix(v []byte) bool {
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
