package mask

import (
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
)

func TestStrategies(t *testing.T) {
	tests := []struct {
		spec     StrategySpec
		in, want string
		null     bool
	}{
		{StrategySpec{Name: "redact"}, "secret", Redacted, false},
		{StrategySpec{Name: "partial", KeepLast: 4}, "123-45-6789", "***-**-6789", false},
		{StrategySpec{Name: "partial", KeepFirst: 1, KeepLast: 2}, "alice@example.com", "a****@*******.*om", false},
		{StrategySpec{Name: "partial", KeepLast: 4}, "abcd", Redacted, false}, // nothing would be hidden
		{StrategySpec{Name: "email"}, "alice@example.com", "****@example.com", false},
		{StrategySpec{Name: "email"}, "not an address", Redacted, false},
		{StrategySpec{Name: "null"}, "x", "", true},
		{StrategySpec{Name: "fixed", Fixed: "n/a"}, "x", "n/a", false},
	}
	for _, tt := range tests {
		st, err := NewStrategy(tt.spec)
		if err != nil {
			t.Fatalf("%+v: %v", tt.spec, err)
		}
		got, null := st.Mask([]byte(tt.in))
		if string(got) != tt.want || null != tt.null {
			t.Errorf("%s(%q) = %q null=%v, want %q null=%v", st.Name(), tt.in, got, null, tt.want, tt.null)
		}
	}
}

func TestHashIsKeyedAndDeterministic(t *testing.T) {
	a, _ := NewStrategy(StrategySpec{Name: "hash", HashKey: []byte("k1")})
	b, _ := NewStrategy(StrategySpec{Name: "hash", HashKey: []byte("k2")})
	x1, _ := a.Mask([]byte("alice"))
	x2, _ := a.Mask([]byte("alice"))
	y, _ := b.Mask([]byte("alice"))
	if string(x1) != string(x2) {
		t.Error("same key, same input: different outputs")
	}
	if string(x1) == string(y) {
		t.Error("different keys gave the same output")
	}
	if strings.Contains(string(x1), "alice") {
		t.Error("hash output contains the input")
	}
}

func TestBadStrategies(t *testing.T) {
	for _, s := range []StrategySpec{{Name: "partial"}, {Name: "hash"}, {Name: "rot13"}} {
		if _, err := NewStrategy(s); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}

func sampleRules(t *testing.T) *Rules {
	t.Helper()
	rs, err := Compile([]config.MaskRule{
		{Columns: []string{"*.email"}, Strategy: "partial", KeepLast: 4},
		{Columns: []string{"public.customers.ssn"}, Strategy: "redact", Filter: "deny"},
		{Columns: []string{"public.customers.salary"}, Strategy: "redact", Roles: []string{"creator"}},
		{ColumnRegex: "^(api_)?secret$", Strategy: "null"},
		{Detectors: []string{"email", "credit_card", "us_ssn"}, Strategy: "redact"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestPlan(t *testing.T) {
	rs := sampleRules(t)
	src := func(table, col string) []Source { return []Source{{"public", table, col}} }
	cols := []Column{
		{Name: "e", Resolved: true, Text: true, Sources: src("users", "email")},                                 // alias of a ruled column
		{Name: "ssn", Resolved: true, Text: true, Sources: src("customers", "ssn")},                             // exact rule
		{Name: "note", Resolved: true, Text: true, Sources: src("customers", "note")},                           // detectors only
		{Name: "upper", Resolved: true, Text: true, Sources: append(src("t", "x"), src("customers", "ssn")...)}, // computed from ssn
		{Name: "?", Resolved: false, Text: true},                                                                // unknown lineage
		{Name: "n", Resolved: false, Text: false},                                                               // unknown, not text
		{Name: "salary", Resolved: true, Text: false, Sources: src("customers", "salary")},                      // creator-only rule, numeric
		{Name: "cnt", Resolved: true, Text: false},                                                              // count(*)
		{Name: "api_secret", Resolved: true, Text: true, Sources: src("keys", "api_secret")},
		{Name: "num", Resolved: true, Text: false, Sources: src("t", "n")},
	}
	in := []string{"alice@example.com", "123-45-6789", "mail bob@x.io, ssn 234-56-7890", "123-45-6789", "anything", "42", "100000", "7", "k", "4111111111111111"}
	type res struct {
		v    string
		null bool
	}
	want := map[string][]res{
		"creator": {{"*****@*******.com", false}, {Redacted, false}, {"mail " + Redacted + ", ssn " + Redacted, false}, {Redacted, false}, {Redacted, false}, {"", true}, {"", true}, {"7", false}, {"", true}, {"", true}},
		"auditor": {{"*****@*******.com", false}, {Redacted, false}, {"mail " + Redacted + ", ssn " + Redacted, false}, {Redacted, false}, {Redacted, false}, {"", true}, {"100000", false}, {"7", false}, {"", true}, {"", true}},
	}
	for role, w := range want {
		p := rs.Plan([]string{role}, cols)
		if !p.Active() {
			t.Fatal("plan with rules is not active")
		}
		for i := range cols {
			got, null := p.Value(i, []byte(in[i]))
			if string(got) != w[i].v || null != w[i].null {
				t.Errorf("%s: column %s: got %q null=%v, want %q null=%v", role, cols[i].Name, got, null, w[i].v, w[i].null)
			}
		}
		if _, null := p.Value(len(cols), []byte("x")); !null {
			t.Errorf("%s: a column outside the plan was not nulled", role)
		}
	}
}

func TestFilterDenied(t *testing.T) {
	rs := sampleRules(t)
	if deny, _ := rs.FilterDenied([]string{"creator"}, Source{"public", "customers", "ssn"}); !deny {
		t.Error("ssn filter not denied")
	}
	if deny, _ := rs.FilterDenied([]string{"creator"}, Source{"public", "users", "email"}); deny {
		t.Error("email filter denied")
	}
}

func TestNilRulesMaskNothing(t *testing.T) {
	var rs *Rules
	p := rs.Plan(nil, []Column{{Resolved: false}})
	if p.Active() {
		t.Fatal("nil rules active")
	}
	if v, null := p.Value(0, []byte("a@b.io")); string(v) != "a@b.io" || null {
		t.Fatal("nil rules changed a value")
	}
}

func TestCompileErrors(t *testing.T) {
	for _, r := range []config.MaskRule{
		{Strategy: "redact"},
		{Columns: []string{"a"}, Detectors: []string{"email"}, Strategy: "redact"},
		{Columns: []string{"a.b.c.d"}, Strategy: "redact"},
		{Columns: []string{"a.[b"}, Strategy: "redact"},
		{ColumnRegex: "(", Strategy: "redact"},
		{Detectors: []string{"nope"}, Strategy: "redact"},
		{Columns: []string{"a"}, Strategy: "partial"},
	} {
		if _, err := Compile([]config.MaskRule{r}); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

func TestFixedShapeSkipsDetectors(t *testing.T) {
	rs := sampleRules(t)
	cols := []Column{
		{Name: "at", Resolved: true, Fixed: true},                                                           // timestamptz: no detectors
		{Name: "salary", Resolved: true, Fixed: true, Sources: []Source{{"public", "customers", "salary"}}}, // a column rule still applies
		{Name: "n", Resolved: true, Text: false},                                                            // a number: detectors still run
		{Name: "?", Resolved: false, Fixed: true},                                                           // unresolved: masked whole
	}
	p := rs.Plan([]string{"creator"}, cols)
	tests := []struct {
		i    int
		in   string
		want string
		null bool
	}{
		{0, "2024-01-15 10:20:30.123+00", "2024-01-15 10:20:30.123+00", false},
		{1, "2024-01-15", "", true},
		{2, "4111111111111111", "", true},
		{3, "2024-01-15", "", true},
	}
	for _, tt := range tests {
		got, null := p.Value(tt.i, []byte(tt.in))
		if string(got) != tt.want || null != tt.null {
			t.Errorf("%s: got %q null=%v, want %q null=%v", cols[tt.i].Name, got, null, tt.want, tt.null)
		}
	}
}

// A computed column is masked whole when any of its sources is masked,
// whatever the rule's strategy; one built only from unmasked columns keeps
// its sources.
func TestDerived(t *testing.T) {
	rs, err := Compile([]config.MaskRule{{Columns: []string{"*.ssn"}, Strategy: "partial", KeepLast: 4}})
	if err != nil {
		t.Fatal(err)
	}
	ssn, name := Source{Schema: "s", Table: "t", Column: "ssn"}, Source{Schema: "s", Table: "t", Column: "name"}
	for _, tc := range []struct {
		c    Column
		want bool // still resolved
	}{
		{Column{Resolved: true, Sources: []Source{name}}, true},
		{Column{Resolved: true, Sources: []Source{name, ssn}}, false},
		{Column{Resolved: true}, true},
	} {
		if got := rs.Derived(nil, tc.c); got.Resolved != tc.want {
			t.Errorf("Derived(%v).Resolved = %v, want %v", tc.c.Sources, got.Resolved, tc.want)
		}
	}
}
