package sqlkind

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
)

func TestObjectsAndFunctions(t *testing.T) {
	tests := []struct {
		name, sql          string
		objects, functions []string
	}{
		{"dedup and sort", "SELECT * FROM b, public.a, b", []string{"b", "public.a"}, nil},
		{"cte is not a table", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", []string{"t"}, nil},
		{"cte does not hide an earlier table", "WITH a AS (SELECT * FROM a) SELECT * FROM a", []string{"a"}, nil},
		{"recursive cte", "WITH RECURSIVE r AS (SELECT 1 UNION SELECT * FROM r) SELECT * FROM r", nil, nil},
		{"subquery and join", "SELECT f(x), s.g(y) FROM t JOIN s.u ON true WHERE x IN (SELECT id FROM v)",
			[]string{"s.u", "t", "v"}, []string{"f", "s.g"}},
		{"quoted names keep case", `SELECT "Lower"(1) FROM "Users"`, []string{"Users"}, []string{"Lower"}},
		{"insert target", "INSERT INTO log SELECT * FROM src", []string{"log", "src"}, nil},
		{"drop", "DROP TABLE a.b, c", []string{"a.b", "c"}, nil},
		{"copy", "COPY s.t FROM STDIN", []string{"s.t"}, nil},
		{"multi statement", "SELECT lower(x) FROM a; UPDATE b SET y = upper(y)", []string{"a", "b"}, []string{"lower", "upper"}},
	}
	p := NewPostgres(PostgresOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := p.Classify(tt.sql)
			if !reflect.DeepEqual(c.Objects, tt.objects) {
				t.Errorf("objects %q, want %q", c.Objects, tt.objects)
			}
			if !reflect.DeepEqual(c.Functions, tt.functions) {
				t.Errorf("functions %q, want %q", c.Functions, tt.functions)
			}
		})
	}
}

func TestStatements(t *testing.T) {
	p := NewPostgres(PostgresOptions{})
	st := p.Statements("PREPARE a AS DELETE FROM t; EXECUTE b(1); DEALLOCATE c; SET LOCAL search_path = x, y; RESET statement_timeout")
	if len(st) != 5 {
		t.Fatalf("got %d statements", len(st))
	}
	if st[0].Prepare != "a" || st[0].Kind != Write {
		t.Errorf("prepare: %+v", st[0])
	}
	if st[1].Execute != "b" || st[1].Kind != Unknown {
		t.Errorf("execute: %+v", st[1])
	}
	if st[2].Deallocate != "c" {
		t.Errorf("deallocate: %+v", st[2])
	}
	if s := st[3].Set; s == nil || s.Name != "search_path" || s.Value != "x, y" || !s.Local {
		t.Errorf("set: %+v", s)
	}
	if s := st[4].Set; s == nil || !s.Reset || s.Name != "statement_timeout" {
		t.Errorf("reset: %+v", s)
	}
	if p.Statements("SELEC") != nil {
		t.Error("unparseable text has no statements")
	}
}

func TestClassifyWithPrepared(t *testing.T) {
	p := NewPostgres(PostgresOptions{})
	prepared := map[string]Classification{
		"del": p.Classify("PREPARE del AS DELETE FROM t WHERE id = $1"),
		"sel": p.Classify("PREPARE sel AS SELECT * FROM t WHERE id = $1"),
	}
	lookup := func(name string) (Classification, bool) {
		c, ok := prepared[name]
		return c, ok
	}
	tests := []struct {
		sql  string
		want Kind
	}{
		{"EXECUTE sel(6)", Read},
		{"EXECUTE del(6)", Write},
		{"EXECUTE missing(6)", Unknown},
		{"SELECT 1; EXECUTE del(1)", Write},
		{"EXECUTE sel(1); EXECUTE missing", Unknown},
		{"SELECT 1", Read},
	}
	for _, tt := range tests {
		if got := p.ClassifyWithPrepared(tt.sql, lookup); got.Kind != tt.want {
			t.Errorf("%q: got %v (%s), want %v", tt.sql, got.Kind, got.Reason, tt.want)
		}
	}
	if got := p.ClassifyWithPrepared("EXECUTE sel(1)", nil); got.Kind != Unknown {
		t.Errorf("without a lookup EXECUTE is %v", got.Kind)
	}
}

func TestNonStandardStrings(t *testing.T) {
	p := NewPostgres(PostgresOptions{NonStandardStrings: true})
	if got := p.Classify(`SELECT 'a\'; DROP TABLE t; --'`); got.Kind != Unknown {
		t.Errorf("backslash with standard_conforming_strings off: %v", got.Kind)
	}
	if got := p.Classify(`SELECT 'a'`); got.Kind != Read {
		t.Errorf("no backslash: %v", got.Kind)
	}
}

func TestConcurrentClassify(t *testing.T) {
	t.Parallel()
	p := NewPostgres(PostgresOptions{CacheSize: 64})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				q := fmt.Sprintf("SELECT * FROM t%d WHERE id = %d", i%100, g*1000+i)
				if c := p.Classify(q); c.Kind != Read {
					t.Errorf("%s: %v", q, c.Kind)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCacheServesShapes(t *testing.T) {
	p := NewPostgres(PostgresOptions{})
	p.Classify("SELECT * FROM t WHERE id = 1")
	key, _ := literalKey("SELECT * FROM t WHERE id = 2", false)
	if _, ok := p.shapes.get(key); !ok {
		t.Fatal("the literal-insensitive key was not cached")
	}
	p.Classify("SET statement_timeout = 1")
	key, _ = literalKey("SET statement_timeout = 2", false)
	if _, ok := p.shapes.get(key); ok {
		t.Fatal("a SET, whose kind depends on its value, was cached under its literal key")
	}
}

func FuzzClassify(f *testing.F) {
	for _, c := range pgCases {
		f.Add(c.sql)
	}
	p := NewPostgres(PostgresOptions{CacheSize: 128})
	f.Fuzz(func(t *testing.T, s string) {
		c := p.Classify(s)
		if c.Kind == Unknown && c.Reason == "" {
			t.Errorf("%q: unknown without a reason", s)
		}
		p.Statements(s)
	})
}

func BenchmarkClassifyCold(b *testing.B) {
	p := NewPostgres(PostgresOptions{CacheSize: -1})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Classify(fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d", i))
	}
}

// BenchmarkClassifyNewLiteral is pgbench's simple mode: a new literal each
// time, served by the literal-insensitive key.
func BenchmarkClassifyNewLiteral(b *testing.B) {
	p := NewPostgres(PostgresOptions{})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.Classify(fmt.Sprintf("SELECT abalance FROM pgbench_accounts WHERE aid = %d", i))
	}
}

func BenchmarkClassifyWarm(b *testing.B) {
	p := NewPostgres(PostgresOptions{})
	q := "SELECT abalance FROM pgbench_accounts WHERE aid = 12345"
	p.Classify(q)
	b.ReportAllocs()
	for b.Loop() {
		p.Classify(q)
	}
}

func BenchmarkLiteralKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		literalKey("SELECT abalance FROM pgbench_accounts WHERE aid = 12345", false)
	}
}
