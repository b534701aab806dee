package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
	_ "modernc.org/sqlite" // the tamper test edits the store's file directly
)

func TestAuditVerifyExportAndTamper(t *testing.T) {
	t.Parallel()
	c := newCast(t, surfacesConfig)
	g := requestGrant(t, c.alice, "pg-prod")
	c.bob.must("reviews", "approve", g)

	// Through the API, and with the store directly (the gateway runs).
	if out := c.audit.must("audit", "verify"); !strings.Contains(out, "trail verified") {
		t.Fatalf("audit verify:\n%s", out)
	}
	c.carol.fails("needs the auditor or admin role", "audit", "verify")
	// The running gateway's chain has no closing checkpoint yet (and,
	// depending on when the last timed checkpoint fell, an unsigned tail):
	// --strict fails either way.
	c.audit.fails("the trail failed verification", "audit", "verify", "--strict")
	if out := c.op.must("audit", "verify", "--config", c.g.config); !strings.Contains(out, "trail verified") {
		t.Fatalf("audit verify --config:\n%s", out)
	}
	c.op.fails("needs the store: add --config", "audit", "verify", "--witness", "x")

	pub := strings.TrimSpace(c.carol.must("audit", "pubkey"))
	if local := strings.TrimSpace(c.op.must("audit", "pubkey", "--config", c.g.config)); local != pub || !strings.HasPrefix(pub, "ed25519:") {
		t.Fatalf("pubkey through the API %q, from the key file %q", pub, local)
	}

	// Export, then verify offline with only the public key.
	c.carol.fails("needs the auditor or admin role", "audit", "export")
	trail := filepath.Join(t.TempDir(), "trail.jsonl")
	if err := os.WriteFile(trail, []byte(c.audit.must("audit", "export")), 0o600); err != nil {
		t.Fatal(err)
	}
	off := &user{t: t, dir: t.TempDir(), vars: map[string]string{}} // no gateway, no store
	if out := off.must("audit", "verify", "--file", trail, "--pubkey", pub); !strings.Contains(out, "trail verified") {
		t.Fatalf("offline verify:\n%s", out)
	}
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	off.fails("the trail failed verification", "audit", "verify", "--file", trail, "--pubkey", recording.PublicKeyString(other))
	off.fails("--file needs --pubkey", "audit", "verify", "--file", trail)
	local := filepath.Join(t.TempDir(), "local.jsonl")
	if err := os.WriteFile(local, []byte(c.op.must("audit", "export", "--config", c.g.config, "--since", "1h")), 0o600); err != nil {
		t.Fatal(err)
	}
	off.must("audit", "verify", "--file", local, "--pubkey", pub)

	// Change one byte of event 2 in the store.
	writer := tamper(t, filepath.Join(filepath.Dir(c.g.config), "state", "countersign.db"), 2)
	out, errs, code := c.op.run("audit", "verify", "--config", c.g.config)
	if code == 0 || !strings.Contains(out, "writer "+writer+": event 2: hash mismatch") || !strings.Contains(errs, "event 2") {
		t.Fatalf("verify after tampering: exit %d\n%s\n%s", code, out, errs)
	}
	c.audit.fails("event 2: hash mismatch", "audit", "verify")
}

// tamper flips one byte of the data of event seq of the store's first
// chain, as an attacker with the database file would, and returns the
// chain's writer.
func tamper(t *testing.T, path string, seq int64) string {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var writer string
	var data []byte
	if err := db.QueryRowContext(ctx, `SELECT e.writer, e.data FROM events e JOIN writers w USING (writer)
		WHERE e.seq = ? ORDER BY w.created_at LIMIT 1`, seq).Scan(&writer, &data); err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if _, err := db.ExecContext(ctx, `UPDATE events SET data = ? WHERE writer = ? AND seq = ?`, data, writer, seq); err != nil {
		t.Fatal(err)
	}
	return writer
}

func TestAuditVerifyWitness(t *testing.T) {
	t.Parallel()
	witness := filepath.Join(t.TempDir(), "witness.jsonl")
	cfg := strings.Replace(surfacesConfig, "  checkpoint_every: 1\n",
		"  checkpoint_every: 1\n  sinks:\n    - type: file\n      path: "+witness+"\n", 1)
	c := newCast(t, cfg)
	requestGrant(t, c.alice, "pg-prod")
	if out := c.op.must("audit", "verify", "--config", c.g.config, "--witness", witness); !strings.Contains(out, "trail verified") {
		t.Fatalf("verify --witness:\n%s", out)
	}
	c.op.fails("witness", "audit", "verify", "--config", c.g.config, "--witness", filepath.Join(t.TempDir(), "none"))
}

// TestRecordedTextMaskedDigestKeyed: a value written as a literal in a
// statement is a value too: the content detectors mask it in the trail.
// The digest recorded beside the masked text is keyed by the deployment
// secret, so hashing guesses of the hidden value cannot find it; only the
// key recomputes it, over the original text.
func TestRecordedTextMaskedDigestKeyed(t *testing.T) {
	t.Parallel()
	const card = "4111111111111111"
	db := scratchDB(t)
	cfg := strings.Replace(engineConfig(db), "        allow: [write, unmask]\n",
		"        allow: [write, unmask]\n      masking:\n        - detectors: [credit_card]\n          strategy: redact\n", 1)
	c := newCast(t, cfg)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://alice:%s@%s/pg-prod?sslmode=verify-ca&sslrootcert=%s",
		c.tokens["alice"], c.g.srv.PostgresAddr(), c.g.caFile(t)))
	if err != nil {
		t.Fatal(err)
	}
	text := "SELECT '" + card + "' AS card"
	var got string
	if err := conn.QueryRow(ctx, text, pgx.QueryExecModeSimpleProtocol).Scan(&got); err != nil || strings.Contains(got, card) {
		t.Fatalf("the client got %q (%v); want it masked", got, err)
	}
	conn.Close(ctx)

	var op struct {
		Text          string `json:"text"`
		Digest        string `json:"digest"`
		SearchPath    string `json:"search_path"`
		Role          string `json:"role"`
		InTransaction bool   `json:"in_transaction"`
	}
	for op.Digest == "" { // the read's event is durable before its result, so it is there
		for _, line := range strings.Split(c.op.must("audit", "export", "--config", c.g.config), "\n") {
			if strings.Contains(line, `"type":"operation"`) {
				var l recording.Line
				if err := json.Unmarshal([]byte(line), &l); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(l.Data, &op); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if strings.Contains(op.Text, card) || !strings.Contains(op.Text, "****") {
		t.Fatalf("recorded text %q: want the card number masked", op.Text)
	}
	key, err := os.ReadFile(filepath.Join(filepath.Dir(c.g.config), "state", "digest.key"))
	if err != nil {
		t.Fatal(err)
	}
	st := guard.State{SearchPath: op.SearchPath, Role: op.Role, InTransaction: op.InTransaction}
	want := hex.EncodeToString(guard.Digest(key, "postgres", "pg-prod", st, text, nil))
	unkeyed := sha256.Sum256([]byte(text))
	guessed := hex.EncodeToString(guard.Digest(make([]byte, 32), "postgres", "pg-prod", st, text, nil))
	switch {
	case op.Digest != want:
		t.Fatalf("recorded digest %s is not the keyed digest of the original text %s", op.Digest, want)
	case op.Digest == hex.EncodeToString(unkeyed[:]) || op.Digest == guessed:
		t.Fatalf("recorded digest %s can be recomputed without the deployment key", op.Digest)
	}
}
