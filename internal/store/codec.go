package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/countersign/countersign/internal/identity"
)

// ErrDuplicate is wrapped into the error of a write refused because its
// key exists: an event's (writer, seq), a checkpoint's, a token's id or hash.
var ErrDuplicate = errors.New("already exists")

// identitySnapshot is a token's identity as it was when the token was
// issued, stored as JSON beside the token.
type identitySnapshot struct {
	Issuer        string          `json:"issuer"`
	Subject       string          `json:"subject"`
	Email         string          `json:"email,omitempty"`
	EmailVerified bool            `json:"email_verified,omitempty"`
	Name          string          `json:"name,omitempty"`
	Groups        []string        `json:"groups"`
	Roles         []identity.Role `json:"roles"`
	Source        identity.Source `json:"source,omitempty"`
	AuthTime      time.Time       `json:"auth_time,omitzero"`
	Breakglass    string          `json:"breakglass,omitempty"`
}

func encodeIdentity(id identity.Identity) ([]byte, error) {
	return json.Marshal(identitySnapshot{
		Issuer: id.Issuer, Subject: id.Subject, Email: id.Email, EmailVerified: id.EmailVerified,
		Name: id.Name, Groups: orEmpty(id.Groups), Roles: orEmpty(id.Roles), Source: id.Source,
		AuthTime: id.AuthTime.UTC(), Breakglass: id.Breakglass,
	})
}

func decodeIdentity(b []byte) (identity.Identity, error) {
	var s identitySnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return identity.Identity{}, fmt.Errorf("store: a token's identity is not valid JSON: %w", err)
	}
	return identity.Identity{
		Issuer: s.Issuer, Subject: s.Subject, Email: s.Email, EmailVerified: s.EmailVerified,
		Name: s.Name, Groups: orNil(s.Groups), Roles: orNil(s.Roles), Source: s.Source,
		AuthTime: s.AuthTime, Breakglass: s.Breakglass,
	}, nil
}

// encodeList stores a list as a JSON array, never null.
func encodeList[T any](v []T) ([]byte, error) { return json.Marshal(orEmpty(v)) }

func decodeList[T any](b []byte, what string) ([]T, error) {
	var v []T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("store: stored %s are not a JSON list: %w", what, err)
	}
	return orNil(v), nil
}

// An empty list is stored as [] and read back as nil, so that both
// backends give back the same value whatever the caller wrote.
func orEmpty[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func orNil[T any](v []T) []T {
	if len(v) == 0 {
		return nil
	}
	return v
}

// SQLite keeps times as INTEGER unix nanoseconds (UTC): numeric order is
// time order. 0 is the zero time.Time.
const (
	minNanoTime = math.MinInt64 + 1
	maxNanoTime = math.MaxInt64
)

var (
	earliest = time.Unix(0, minNanoTime)
	latest   = time.Unix(0, maxNanoTime)
)

// toNanos converts t for SQLite. Times outside what int64 nanoseconds can
// hold (before 1678, after 2262) are refused rather than wrapped around.
func toNanos(t time.Time) (int64, error) {
	if t.IsZero() {
		return 0, nil
	}
	if t.Before(earliest) || t.After(latest) {
		return 0, fmt.Errorf("store: time %s is outside what the store keeps (1678 to 2262)", t.UTC().Format(time.RFC3339))
	}
	return t.UnixNano(), nil
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
