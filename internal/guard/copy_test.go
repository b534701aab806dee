package guard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
)

// TestCopyFromNeedsWriteGrant: COPY ... FROM STDIN writes rows that arrive
// after the decision, so an operation review (which binds only the text)
// cannot cover it: without a write grant it is refused, and no review is
// created that an approver would approve blind. A write grant allows it.
func TestCopyFromNeedsWriteGrant(t *testing.T) {
	ctx := context.Background()
	classifier := sqlkind.NewPostgres(sqlkind.PostgresOptions{})
	op := func(text string) *guard.Operation {
		return &guard.Operation{Text: text, State: guard.State{SearchPath: "public"}, Class: classifier.Classify(text)}
	}
	for _, mode := range []string{"wait", "reject"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, mode, time.Minute)
			s := session(alice, "s1")
			tests := []struct{ name, text string }{
				{"copy from stdin", "COPY t (a, b) FROM STDIN"},
				{"copy from stdin, csv", "COPY public.t FROM STDIN WITH (FORMAT csv)"},
				{"behind another statement", "SELECT 1; COPY t FROM STDIN"},
			}
			for _, tt := range tests {
				v := e.g.Decide(ctx, s, op(tt.text))
				if v.Decision != guard.Deny || v.Code != "copy_needs_grant" || !strings.Contains(v.Message, "needs a write grant") ||
					!strings.Contains(v.Message, "countersign grants request pg-prod") {
					t.Fatalf("%s: %+v", tt.name, v)
				}
			}
			if n := e.rec.count("review.created"); n != 0 {
				t.Fatalf("%d reviews were created for COPY FROM STDIN", n)
			}
			// Other writes still get a review.
			if v := e.g.Decide(ctx, s, op("INSERT INTO t VALUES (1)")); v.Code == "copy_needs_grant" || v.ReviewID == "" {
				t.Fatalf("INSERT: %+v", v)
			}
			g, err := e.svc.Create(ctx, review.Request{Type: review.TypeGrant, Resource: "pg-prod", Initiator: alice,
				Access: []string{"write"}, Duration: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Approve(ctx, g.ID, api(bob), ""); err != nil {
				t.Fatal(err)
			}
			if v := e.g.Decide(ctx, s, op("COPY t FROM STDIN")); v.Decision != guard.Allow || v.GrantID != g.ID {
				t.Fatalf("COPY FROM STDIN under a write grant: %+v", v)
			}
		})
	}
}
