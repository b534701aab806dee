package guard

import (
	"bytes"
	"encoding/hex"
	"testing"
)

type digestInput struct {
	key               []byte
	dialect, resource string
	st                State
	text              string
	params            []Param
}

func (d digestInput) sum() []byte {
	return Digest(d.key, d.dialect, d.resource, d.st, d.text, d.params)
}

func baseInput() digestInput {
	return digestInput{
		key: []byte("k"), dialect: "postgres", resource: "pg-prod",
		st:   State{SearchPath: "public", Role: "app", Schema: "", InTransaction: false},
		text: "UPDATE t SET a = $1 WHERE id = $2",
		params: []Param{
			{Format: 0, Type: 25, Value: []byte("x")},
			{Format: 1, Type: 23, Value: []byte{0, 0, 0, 7}},
		},
	}
}

// TestDigestEveryFieldCounts changes each field alone; every change must
// change the digest.
func TestDigestEveryFieldCounts(t *testing.T) {
	base := baseInput().sum()
	tests := []struct {
		name string
		mut  func(*digestInput)
	}{
		{"key", func(d *digestInput) { d.key = []byte("k2") }},
		{"dialect", func(d *digestInput) { d.dialect = "mysql" }},
		{"resource", func(d *digestInput) { d.resource = "pg-prod2" }},
		{"search_path", func(d *digestInput) { d.st.SearchPath = "evil, public" }},
		{"role", func(d *digestInput) { d.st.Role = "postgres" }},
		{"schema", func(d *digestInput) { d.st.Schema = "app" }},
		{"in transaction", func(d *digestInput) { d.st.InTransaction = true }},
		{"text literal", func(d *digestInput) { d.text = "UPDATE t SET a = $1 WHERE id = $3" }},
		{"text space", func(d *digestInput) { d.text += " " }},
		{"param format", func(d *digestInput) { d.params[0].Format = 1 }},
		{"param type", func(d *digestInput) { d.params[0].Type = 1043 }},
		{"param null", func(d *digestInput) { d.params[0].Null = true }},
		{"param null keeps bytes", func(d *digestInput) { d.params[0] = Param{Type: 25, Null: true, Value: []byte("x")} }},
		{"param bytes", func(d *digestInput) { d.params[1].Value = []byte{0, 0, 0, 8} }},
		{"param dropped", func(d *digestInput) { d.params = d.params[:1] }},
		{"param added", func(d *digestInput) { d.params = append(d.params, Param{}) }},
		{"params none", func(d *digestInput) { d.params = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := baseInput()
			tt.mut(&d)
			if bytes.Equal(d.sum(), base) {
				t.Fatal("digest did not change")
			}
		})
	}
}

// TestDigestFieldSplits moves bytes across field boundaries; the length
// prefixes must keep every split apart.
func TestDigestFieldSplits(t *testing.T) {
	inputs := []digestInput{
		{dialect: "postgres", resource: "pg"},
		{dialect: "postgre", resource: "spg"},
		{dialect: "postgrespg"},
		{resource: "postgrespg"},
		{st: State{SearchPath: "a", Role: "b"}},
		{st: State{SearchPath: "ab"}},
		{st: State{Role: "ab"}},
		{st: State{Schema: "ab"}},
		{text: "ab"},
		{text: "a", params: []Param{{Value: []byte("b")}}},
		{params: []Param{{Value: []byte("ab")}}},
		{params: []Param{{Value: []byte("a")}, {Value: []byte("b")}}},
		{params: []Param{{Value: nil}}},
		{params: []Param{{Null: true}}},
		{params: []Param{}},
	}
	seen := map[string]int{}
	for i, in := range inputs {
		in.key = []byte("k")
		s := string(in.sum())
		if j, dup := seen[s]; dup {
			t.Fatalf("inputs %d and %d collide", j, i)
		}
		seen[s] = i
	}
}

func TestDigestDeterministic(t *testing.T) {
	a, b := baseInput().sum(), baseInput().sum()
	if !bytes.Equal(a, b) || len(a) != 32 {
		t.Fatalf("digest not stable: %x %x", a, b)
	}
}

// TestDigestKnownAnswer pins the encoding: approvals stored before a
// change of the code must still match the same operation after it.
func TestDigestKnownAnswer(t *testing.T) {
	d := baseInput()
	if got := hex.EncodeToString(d.sum()); got != "144db945e54527e60aacb5c02ffa21cb7d5f795bda2bd7a35112c64cbaff5bb3" {
		t.Fatalf("digest %s", got)
	}
	d.st.InTransaction, d.params = true, nil
	d.key = []byte("a key longer than the sha256 block size of sixty-four bytes, so it is hashed first")
	if got := hex.EncodeToString(d.sum()); got != "da94c0d828ae3d2a41b18a16d7e3063befb78ae554169fe0d19d1f77d3d4f8f6" {
		t.Fatalf("digest with a long key %s", got)
	}
	// The pooled HMAC of the first key is not reused under the second.
	if got := hex.EncodeToString(baseInput().sum()); got != "144db945e54527e60aacb5c02ffa21cb7d5f795bda2bd7a35112c64cbaff5bb3" {
		t.Fatalf("digest after a key change %s", got)
	}
}

func TestDigestAllocs(t *testing.T) {
	d := baseInput()
	d.sum()
	if n := testing.AllocsPerRun(100, func() { d.sum() }); n > 1 {
		t.Fatalf("Digest allocates %.0f times; want 1 (the sum)", n)
	}
}
