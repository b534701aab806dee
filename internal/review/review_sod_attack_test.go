package review_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/store/storetest"
)

// TestConcurrentVotesOfOneMailboxInTwoForms: one approver under two
// issuers whose verified emails are one mailbox written two ways (another
// Unicode normal form, a Kelvin sign for k, a fullwidth letter) races
// approvals of a review that needs two people, through two replicas, each
// on its own connection to one store (SQLite, and PostgreSQL as several
// replicas use it). The check before the vote cannot see a vote not yet
// stored, so only the store's one-vote-per-email constraint can stop the
// second: it must see the two addresses as one.
func TestConcurrentVotesOfOneMailboxInTwoForms(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) func() review.Store
	}{
		{"sqlite", func(t *testing.T) func() review.Store {
			path := filepath.Join(t.TempDir(), "countersign.db")
			return func() review.Store { return openURL(t, "sqlite://"+path) }
		}},
		{"postgres", func(t *testing.T) func() review.Store {
			url := storetest.PostgresDatabase(t, "cs_review_sod")
			return func() review.Store { return openURL(t, url) }
		}},
	}
	pairs := []struct {
		name         string
		first, other string
	}{
		{"NFC and NFD", "jos\u00e9@example.com", "jose\u0301@example.com"},
		{"k and the Kelvin sign", "kate@example.com", "\u212Aate@example.com"},
		{"fullwidth letter", "ann@example.com", "\uff41nn@example.com"},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			connect := st.open(t)
			for _, tt := range pairs {
				t.Run(tt.name, func(t *testing.T) {
					ctx := context.Background()
					replicas := []*env{newEnv(t, setup{approvals: 2, store: connect()}), newEnv(t, setup{approvals: 2, store: connect()})}
					r := replicas[0].create(t, alice, "DELETE FROM t")
					ids := []identity.Identity{
						person("https://idp-a", "p-1", tt.first, "dba-leads"),
						person("https://idp-b", "p-2", tt.other, "dba-leads"),
					}
					var wg sync.WaitGroup
					for i := range 20 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							_, _ = replicas[i%2].svc.Approve(ctx, r.ID, api(ids[(i/2)%2]), "")
						}()
					}
					wg.Wait()
					got, err := replicas[1].svc.Get(ctx, r.ID)
					if err != nil {
						t.Fatal(err)
					}
					if got.Approvals() != 1 || got.Status != review.StatusPending {
						t.Fatalf("one person counted %d times; status %s", got.Approvals(), got.Status)
					}
				})
			}
		})
	}
}

// openURL opens a real store; several opens of one URL are several
// replicas' connections.
func openURL(t *testing.T, url string) review.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestGrantServesOnlyItsInitiator: alice asks for a write grant; her own
// second identity may not approve it, bob does. The grant opens write for
// alice alone: not for bob who approved it, nor for alice's second
// identity under another issuer (a grant binds the identity key, never the
// email), nor for another approver.
func TestGrantServesOnlyItsInitiator(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, setup{})
	g, err := e.svc.Create(ctx, review.Request{Type: review.TypeGrant, Resource: "pg-prod", Initiator: alice,
		Access: []string{"write"}, Duration: time.Hour, Reason: "migration"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Approve(ctx, g.ID, api(aliceB), ""); err == nil {
		t.Fatal("alice approved her own grant under her second identity")
	}
	if _, err := e.svc.Approve(ctx, g.ID, api(bob), ""); err != nil {
		t.Fatal(err)
	}
	write := func(access []string) bool { return slices.Contains(access, "write") }
	tests := []struct {
		name string
		who  identity.Identity
		want bool
	}{
		{"the initiator", alice, true},
		{"the approver", bob, false},
		{"the initiator's second identity", aliceB, false},
		{"another approver", carol, false},
	}
	for _, tt := range tests {
		_, ok, err := e.svc.ActiveGrant(ctx, "pg-prod", tt.who, write)
		if err != nil || ok != tt.want {
			t.Fatalf("%s: grant active = %v (%v), want %v", tt.name, ok, err, tt.want)
		}
	}
}

// TestRacingVotesOfOnePersonTheStoreCannotTellApart: one approver holds an
// OIDC login and an identity the operator minted under their email, or
// two logins whose email only one provider verified. Before a vote is
// stored the service refuses the second identity (MaybeSame), but two
// racing votes both pass that check, and the store's unique indexes (the
// identity key, the verified email) cannot tell the pair apart, so both
// are stored. The review must still count one person and stay pending.
func TestRacingVotesOfOnePersonTheStoreCannotTellApart(t *testing.T) {
	unverified := person("https://idp-b", "b-9", "dora@example.com", "dba-leads")
	unverified.EmailVerified = false
	minted := person(identity.LocalIssuer, "carl@example.com", "", "dba-leads")
	minted.Source = identity.SourceLocal
	pairs := []struct {
		name       string
		one, other identity.Identity
	}{
		{"a minted identity named after the email", person("https://idp-a", "c-1", "carl@example.com", "dba-leads"), minted},
		{"an email verified on one side only", person("https://idp-a", "d-1", "dora@example.com", "dba-leads"), unverified},
	}
	for _, tt := range pairs {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "countersign.db")
			replicas := []*env{
				newEnv(t, setup{approvals: 2, store: openURL(t, "sqlite://"+path)}),
				newEnv(t, setup{approvals: 2, store: openURL(t, "sqlite://"+path)}),
			}
			ids := []identity.Identity{tt.one, tt.other}
			for range 10 {
				r := replicas[0].create(t, alice, "DELETE FROM t")
				var wg sync.WaitGroup
				for i := range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, _ = replicas[i].svc.Approve(ctx, r.ID, api(ids[i]), "")
					}()
				}
				wg.Wait()
				got, err := replicas[1].svc.Get(ctx, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Status != review.StatusPending || got.Approvals() != 1 {
					t.Fatalf("one person under two identities: %d approvals counted of %d votes; status %s",
						got.Approvals(), len(got.Votes), got.Status)
				}
			}
		})
	}
}
