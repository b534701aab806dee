package recording

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// The hand-written encodings must be json.Marshal's bytes exactly: the
// hash covers them and exports reproduce them.

func checkSameJSON(t *testing.T, v jsonAppender) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.appendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("appendJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
	l := &Log{}
	enc, err := l.encodeData(v)
	if err != nil || !bytes.Equal(enc, want) {
		t.Fatalf("encodeData differs from json.Marshal (%v):\n got %s\nwant %s", err, enc, want)
	}
}

func TestAppendJSONMatchesMarshal(t *testing.T) {
	nasty := "<script>&\"\\\n\r\t\b\f\x00\x1f\x7f é \u2028\u2029 \xff\xfe invalid \U0001F600"
	results := []Result{{Columns: []string{"a", "<b>"}, Rows: [][]*string{{nil, &nasty}}, Truncated: true}}
	empty := []Result{}
	ops := []*OperationData{
		{},
		{Text: "SELECT abalance FROM pgbench_accounts WHERE aid = 42", Kind: "read", Objects: []string{"public.pgbench_accounts"},
			Statements: 1, Decision: "allow", Digest: "ab12", SearchPath: `"$user", public`, Role: "postgres"},
		{Text: nasty, Kind: "unknown", Objects: []string{}, Statements: -3, Reason: nasty, Params: 7, Command: "COM_QUERY",
			Decision: "deny", Code: "approval_required", ReviewID: "r-1", GrantID: "g-2", Digest: "ff", Schema: "app",
			InTransaction: true, Unmasked: true, UnmaskGrantID: "g-<3>"},
		{Objects: []string{"", nasty, "a.b"}},
	}
	for _, op := range ops {
		checkSameJSON(t, op)
	}
	outs := []*OutcomeData{
		{},
		{CommandTag: "SELECT 1", Rows: 1, Committed: true, Digest: "ab", DurationMS: 12},
		{CommandTag: nasty, Rows: -1, ErrorCode: "42501", RolledBack: true, DurationMS: 1 << 40, Results: &results},
		{Results: &empty},
	}
	for _, out := range outs {
		checkSameJSON(t, out)
	}
}

func TestEncodeDataNilPointer(t *testing.T) {
	l := &Log{}
	for _, v := range []any{(*OperationData)(nil), (*OutcomeData)(nil)} {
		got, err := l.encodeData(v)
		if err != nil || string(got) != "null" {
			t.Fatalf("%T(nil) = %s, %v; want null as json.Marshal writes it", v, got, err)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("SELECT 1", "read", "public.t", "", int64(3), true)
	f.Add("<&>\"\\\u2028\xff", "\x00", "\x7f", "é", int64(-1), false)
	f.Fuzz(func(t *testing.T, text, kind, object, reason string, n int64, flag bool) {
		checkSameJSON(t, &OperationData{Text: text, Kind: kind, Objects: []string{object, text}, Statements: int(n),
			Reason: reason, Params: int(n >> 3), Command: kind, Decision: reason, Code: object, ReviewID: text,
			GrantID: kind, Digest: object, SearchPath: reason, Role: text, Schema: object, InTransaction: flag,
			Unmasked: !flag, UnmaskGrantID: kind})
		checkSameJSON(t, &OutcomeData{CommandTag: text, Rows: n, ErrorCode: kind, Committed: flag, RolledBack: !flag,
			Digest: object, DurationMS: -n})
	})
}

func TestAppendJSONAllocs(t *testing.T) {
	op := &OperationData{Text: "SELECT abalance FROM pgbench_accounts WHERE aid = 42", Kind: "read",
		Objects: []string{"public.pgbench_accounts"}, Statements: 1, Decision: "allow", Digest: "ab12"}
	op.SearchPath = `"$user", public` // escaped here, not by json.Marshal
	if n := testing.AllocsPerRun(100, func() { op.appendJSON(nil) }); n > 1 {
		t.Fatalf("OperationData.appendJSON allocates %.0f times; want 1", n)
	}
}

// TestAppendJSONEveryField sets every field (found by reflection, so a
// field added later is covered too) and each one alone: a field the
// hand-written encoding misses fails here.
func TestAppendJSONEveryField(t *testing.T) {
	results := []Result{{Columns: []string{"c"}, Rows: [][]*string{{nil}}}}
	for _, v := range []jsonAppender{&OperationData{}, &OutcomeData{}} {
		typ := reflect.TypeOf(v).Elem()
		all := reflect.New(typ)
		for i := range typ.NumField() {
			one := reflect.New(typ)
			for _, target := range []reflect.Value{all, one} {
				f := target.Elem().Field(i)
				switch f.Kind() {
				case reflect.String:
					f.SetString("v<" + typ.Field(i).Name + ">")
				case reflect.Int, reflect.Int64:
					f.SetInt(int64(7 + i))
				case reflect.Bool:
					f.SetBool(true)
				case reflect.Slice:
					f.Set(reflect.ValueOf([]string{"a", "b.c"}))
				case reflect.Pointer:
					f.Set(reflect.ValueOf(&results))
				default:
					t.Fatalf("%s.%s: kind %s not covered by this test", typ.Name(), typ.Field(i).Name, f.Kind())
				}
			}
			checkSameJSON(t, one.Interface().(jsonAppender))
		}
		checkSameJSON(t, all.Interface().(jsonAppender))
	}
}

// TestAppendJSONEveryASCIIByte compares every ASCII byte, alone and
// between letters, with json.Marshal's escaping.
func TestAppendJSONEveryASCIIByte(t *testing.T) {
	for c := range 0x80 {
		for _, s := range []string{string(rune(c)), "a" + string(rune(c)) + "b", string(rune(c)) + string(rune(c))} {
			want, _ := json.Marshal(s)
			if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
				t.Fatalf("byte %#x: got %s, want %s", c, got, want)
			}
		}
	}
}
