package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/identity"
)

// TestBreakglassTokenLivesShort: a break-glass resource token runs held
// operations unreviewed, so it lives at most BreakglassTokenTTL however
// long ordinary resource tokens live; only the breakglass role gets one.
func TestBreakglassTokenLivesShort(t *testing.T) {
	f := newFixture(t, nil)
	olga, _ := f.mint(t, "olga", []string{"oncall"}, identity.ScopeAPI)
	alice, _ := f.mint(t, "alice", []string{"engineers"}, identity.ScopeAPI)
	tests := []struct {
		name    string
		token   string
		body    string
		status  int
		longest time.Duration
	}{
		{"ordinary resource token", olga, `{"resource":"pg-prod"}`, 200, time.Hour},
		{"break-glass token", olga, `{"resource":"pg-prod","breakglass":"primary down"}`, 200, BreakglassTokenTTL},
		{"break-glass without the role", alice, `{"resource":"pg-prod","breakglass":"me too"}`, 403, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			a := f.do(t, "POST", "/v1/connect", tt.token, tt.body)
			if a.status != tt.status {
				t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
			}
			if tt.status != 200 {
				return
			}
			var issued Issued
			if err := json.Unmarshal(a.body, &issued); err != nil {
				t.Fatal(err)
			}
			life := issued.ExpiresAt.Sub(before)
			if life > tt.longest+time.Minute || life < tt.longest-time.Minute {
				t.Fatalf("the token lives %v, want about %v", life, tt.longest)
			}
		})
	}
}
