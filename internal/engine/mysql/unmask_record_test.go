package mysql

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/review"
)

// An approved unmask grant lifts masking for its holder on MySQL too, and
// every unmasked result is recorded as such (with the grant's id), so an
// auditor can find who saw clear values and under which grant.
func TestRealUnmaskGrantRecorded(t *testing.T) {
	t.Parallel()
	re, db, tb := maskEnv(t)
	q := fmt.Sprintf("SELECT ssn FROM %s WHERE id = 1 AND 2 = 2", tb)
	if got := queryRow(t, db, q); fmt.Sprint(got) != "[****]" {
		t.Fatalf("before the grant: %v, want the masked value", got)
	}
	ctx := context.Background()
	g, err := re.svc.Create(ctx, review.Request{Type: review.TypeGrant, Resource: "my-mask", Initiator: person("alice", "engineers"),
		Access: []string{"unmask"}, Duration: time.Hour, Reason: "unmask record test"})
	if err != nil {
		t.Fatal(err)
	}
	if g, err = re.svc.Approve(ctx, g.ID, apiActor(person("carol", "dba-leads")), ""); err != nil {
		t.Fatal(err)
	}
	q2 := fmt.Sprintf("SELECT ssn FROM %s WHERE id = 1 AND 1 = 1", tb) // a text of its own, to find its event
	if got := queryRow(t, db, q2); fmt.Sprint(got) != fmt.Sprint([]any{secretSSN}) {
		t.Fatalf("under the unmask grant: %v, want the clear value", got)
	}
	waitFor(t, func() bool { return re.stored(t, q2, `"unmasked":true`, `"unmask_grant_id":"`+g.ID+`"`) })
	if re.stored(t, q, `"unmasked":true`) {
		t.Fatal("the masked read before the grant is recorded as unmasked")
	}
}
