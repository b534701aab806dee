package postgres

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/sqlkind"
)

// TestSessionSettingsThatChangeReading: settings that would make the
// gateway read statements differently from the server are unknown to the
// classifier, and if one takes effect anyway (the guard allowed it) the
// upstream's ParameterStatus ends the session before another statement is
// read under it.
func TestSessionSettingsThatChangeReading(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	tests := []struct{ name, set, msg string }{
		{"standard_conforming_strings off", "SET standard_conforming_strings = off", "standard_conforming_strings"},
		{"client_encoding LATIN1", "SET client_encoding = 'LATIN1'", "client_encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			c := ev.connect(t)
			_, err := c.Exec(ctx, tt.set, pgx.QueryExecModeSimpleProtocol)
			pe := pgErr(t, err)
			if pe.Code != "0A000" || !strings.Contains(pe.Message, tt.msg) {
				t.Fatalf("got %s %q", pe.Code, pe.Message)
			}
			if k := ev.g.Op(t, tt.set).Class.Kind; k != sqlkind.Unknown {
				t.Fatalf("%q classified %v, want unknown", tt.set, k)
			}
			if _, err := c.Exec(ctx, "SELECT 1"); err == nil {
				t.Fatal("the session went on under the setting")
			}
		})
	}
}

// TestFunctionCallIsUnknown: psql's large-object commands send FunctionCall
// messages, which name a function by oid with no text to classify: each is
// an unknown operation, decided and recorded like any other, and refused
// when the guard refuses it.
func TestFunctionCallIsUnknown(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	file := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(file, []byte("large object through countersign"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := ev.psql(t, "require", "-c", `\lo_import '`+file+`'`)
	if err != nil || !strings.Contains(out, "lo_import") {
		t.Fatalf("\\lo_import: %v %s", err, out)
	}
	var calls int
	for _, op := range ev.g.Ops() {
		if strings.HasPrefix(op.Text, "-- FunctionCall") {
			calls++
			if op.Class.Kind != sqlkind.Unknown {
				t.Fatalf("%q classified %v", op.Text, op.Class.Kind)
			}
		}
	}
	if calls == 0 {
		t.Fatal("no FunctionCall was decided")
	}
	ev.g.SetRule(enginetest.DenyIf("-- FunctionCall"))
	out, err = ev.psql(t, "require", "-c", `\lo_import '`+file+`'`)
	if err == nil || !strings.Contains(out, "refused by test policy") {
		t.Fatalf("\\lo_import refused: %v %s", err, out)
	}
}
