package store

import (
	"math"
	"time"

	"github.com/countersign/countersign/internal/identity"
)

// tokenJSON is a token's identity snapshot and scopes, encoded.
type tokenJSON struct{ identity, scopes []byte }

func tokenRow(t identity.Token) (tokenJSON, error) {
	ident, err := encodeIdentity(t.Identity)
	if err != nil {
		return tokenJSON{}, err
	}
	scopes, err := encodeList(t.Scopes)
	if err != nil {
		return tokenJSON{}, err
	}
	return tokenJSON{identity: ident, scopes: scopes}, nil
}

// finishToken decodes the JSON columns and fills in the times.
func finishToken(t identity.Token, ident, scopes []byte, created, expires time.Time, isRevoked bool, revoked time.Time) (identity.Token, error) {
	var err error
	if t.Identity, err = decodeIdentity(ident); err != nil {
		return identity.Token{}, err
	}
	if t.Scopes, err = decodeList[identity.Scope](scopes, "scopes"); err != nil {
		return identity.Token{}, err
	}
	t.CreatedAt, t.ExpiresAt = created, expires
	if isRevoked {
		t.RevokedAt = &revoked
	}
	return t, nil
}

// sqlLimit turns "0 = all" into a LIMIT both backends accept.
func sqlLimit(limit int) int64 {
	if limit <= 0 {
		return math.MaxInt64
	}
	return int64(limit)
}
