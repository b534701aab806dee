package mysql

import (
	"context"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
)

func TestQueryThroughGateway(t *testing.T) {
	ev := newEnv(t, nil)
	db := ev.open(t, "my-test", "")
	var name string
	if err := db.QueryRow("SELECT name FROM people WHERE id = 1").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "ada" {
		t.Fatalf("name = %q", name)
	}
	if len(ev.rec.OfType(recording.TypeSessionOpen)) != 1 {
		t.Fatal("session.open not recorded")
	}
}

func TestEd25519Upstream(t *testing.T) {
	ev := newEnv(t, nil)
	db := ev.open(t, "my-ed", "")
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM people").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("count = %d", n)
	}
}

func TestDenyWrite(t *testing.T) {
	ev := newEnv(t, nil)
	ev.g.SetRule(enginetest.DenyIf("DELETE"))
	db := ev.open(t, "my-test", "")
	_, err := db.Exec("DELETE FROM people WHERE id = 2")
	if err == nil || !strings.Contains(err.Error(), "refused by test policy") || !strings.Contains(err.Error(), "1142") {
		t.Fatalf("err = %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM people").Scan(&n); err != nil || n != 2 {
		t.Fatalf("count = %d, %v", n, err)
	}
	_ = context.Background
	_ = guard.Allow
}
