package storetest

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/store"
)

// NoSecretStored issues a token through identity.Tokens and then reads
// every value of every table through dump (raw SQL of the implementation,
// each value as text or bytes): none may hold the secret, in any of the
// forms a careless store could keep it (as is, hex, base64), while the
// hash must be there.
func NoSecretStored(t *testing.T, st store.Store, dump func(t *testing.T) [][]byte) {
	ctx := ctxOf(t)
	secret, tok, err := identity.NewTokens(st).Issue(ctx, person(unique("secret")), []identity.Scope{identity.ScopeAPI}, time.Hour)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	body := strings.TrimPrefix(secret, identity.TokenPrefix)
	raw, _ := base64.RawURLEncoding.DecodeString(body)
	forbidden := []string{secret, body, hex.EncodeToString([]byte(secret)), string(raw), hex.EncodeToString(raw),
		base64.StdEncoding.EncodeToString([]byte(secret))}
	hashSeen := false
	for _, v := range dump(t) {
		for _, f := range forbidden {
			if strings.Contains(string(v), f) {
				t.Fatalf("a stored value holds the token secret (%q); only its SHA-256 may be stored", v)
			}
		}
		hashSeen = hashSeen || string(v) == string(tok.Hash)
	}
	if !hashSeen {
		t.Fatal("no stored value is the token's hash; is dump reading every table?")
	}
}
