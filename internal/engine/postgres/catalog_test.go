package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5"
)

// The upstream catalog settles what a read calls: built-ins that are
// immutable or stable are reads, user functions, volatile built-ins and
// views that call them are unknown.
func TestCatalogResolution(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	c := ev.connect(t)
	ctx := context.Background()
	s := "cat_" + randHex(3)
	for _, q := range []string{
		"CREATE SCHEMA " + s,
		"CREATE TABLE " + s + ".t (x int)",
		"CREATE FUNCTION " + s + ".evil() RETURNS int VOLATILE LANGUAGE sql AS 'SELECT 1'",
		"CREATE VIEW " + s + ".bad AS SELECT " + s + ".evil() AS e",
		"CREATE VIEW " + s + ".good AS SELECT x FROM " + s + ".t",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	tests := []struct {
		name, sql string
		want      sqlkind.Kind
	}{
		{"plain table", "SELECT x FROM " + s + ".t WHERE x = 1", sqlkind.Read},
		{"built-in off the static list", "SELECT pg_catalog.quote_ident('a')", sqlkind.Read},
		{"user function", "SELECT " + s + ".evil()", sqlkind.Unknown},
		{"volatile built-in", "SELECT pg_catalog.pg_stat_reset()", sqlkind.Unknown},
		{"view calling a user function", "SELECT * FROM " + s + ".bad", sqlkind.Unknown},
		{"safe view", "SELECT * FROM " + s + ".good", sqlkind.Read},
	}
	for _, tt := range tests {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
			t.Run(tt.name+"/"+mode.String(), func(t *testing.T) {
				if _, err := c.Exec(ctx, tt.sql, mode); err != nil && tt.want == sqlkind.Read {
					t.Fatal(err)
				}
				if got := ev.g.Op(t, tt.sql).Class; got.Kind != tt.want {
					t.Fatalf("kind %v (%s), want %v", got.Kind, got.Reason, tt.want)
				}
			})
		}
	}
}

// A catalog that cannot answer makes the operation unknown, and says so
// without naming the upstream login.
func TestCatalogErrorIsUnknown(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, func(o *Options) {
		o.Catalog = func(*config.Resource) (sqlkind.Catalog, error) { return failingCatalog{}, nil }
	})
	c := ev.connect(t)
	ctx := context.Background()
	if _, err := c.Exec(ctx, "SELECT 1 WHERE 1 = 1", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	got := ev.g.Op(t, "SELECT 1 WHERE 1 = 1").Class
	if got.Kind != sqlkind.Unknown || got.Reason == "" || strings.Contains(got.Reason, "secret_login") {
		t.Fatalf("kind %v (%s), want unknown, without the cause", got.Kind, got.Reason)
	}
}

type failingCatalog struct{}

var errCatalog = errors.New("catalog down for user secret_login")

func (failingCatalog) Functions(context.Context, []string) (map[string]sqlkind.FuncInfo, error) {
	return nil, errCatalog
}
func (failingCatalog) Operators(context.Context, []string) (map[string]sqlkind.FuncInfo, error) {
	return nil, errCatalog
}
func (failingCatalog) Types(context.Context, []string) (map[string]bool, error) {
	return nil, errCatalog
}
func (failingCatalog) Relations(context.Context, []string) (map[string]sqlkind.RelationInfo, error) {
	return nil, errCatalog
}
