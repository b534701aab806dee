package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/countersign/countersign/internal/api"
)

// surfacesConfig has approvers, an auditor, a second resource that needs
// two approvals, and a checkpoint after every event (so that an export is
// signed throughout).
const surfacesConfig = `listen:
  api: 127.0.0.1:0
store: sqlite://./state/countersign.db
identity:
  roles:
    engineers: [creator]
    dba-leads: [approver]
    audit: [auditor]
    platform-admins: [admin]
recording:
  checkpoint_every: 1
resources:
  - name: pg-prod
    type: postgres
    address: 127.0.0.1:5432
    database: postgres
    username: postgres
    policy:
      access: [engineers, dba-leads]
      review:
        kinds: [write, schema, privilege, admin, unknown]
        approvers: [dba-leads]
        mode: reject
      grants:
        max_duration: 4h
        allow: [write, unmask]
  - name: pg-two
    type: postgres
    address: 127.0.0.1:5432
    database: postgres
    username: postgres
    policy:
      access: [engineers, dba-leads]
      review:
        kinds: [write]
        approvers: [dba-leads]
        approvals: 2
`

// cast is the people of surfacesConfig, each a CLI user with a token.
type cast struct {
	g                                   *gateway
	op                                  *user // the operator: --config
	alice, bob, dave, carol, eve, audit *user
	aliceAlt, admin, db                 *user
	tokens                              map[string]string
}

// newCast starts a gateway and issues: alice (creator, alice@example.com),
// bob and dave (approvers), carol (creator only), eve (no groups), audit
// (auditor), aliceAlt (an approver with alice's verified email), admin,
// and db (bob's resource-only token).
func newCast(t *testing.T, config string) *cast {
	t.Helper()
	g := startGateway(t, config)
	c := &cast{g: g, op: g.user(t, ""), tokens: map[string]string{}}
	issue := func(name string, args ...string) *user {
		base := []string{"token", "issue", "--config", g.config, "--ttl", "1h"}
		tok := strings.TrimSpace(c.op.must(append(base, args...)...))
		c.tokens[name] = tok
		return g.user(t, tok)
	}
	c.alice = issue("alice", "--user", "alice", "--groups", "engineers", "--email", "alice@example.com")
	c.bob = issue("bob", "--user", "bob", "--groups", "dba-leads")
	c.dave = issue("dave", "--user", "dave", "--groups", "dba-leads")
	c.carol = issue("carol", "--user", "carol", "--groups", "engineers")
	c.eve = issue("eve", "--user", "eve")
	c.audit = issue("audit", "--user", "auditor", "--groups", "audit")
	c.aliceAlt = issue("aliceAlt", "--user", "alice-admin", "--groups", "dba-leads", "--email", "alice@example.com")
	c.admin = issue("admin", "--user", "root", "--groups", "platform-admins")
	c.db = issue("db", "--user", "bob", "--groups", "dba-leads", "--scope", "resource:pg-prod")
	return c
}

// requestGrant has u request a grant and returns its id.
func requestGrant(t *testing.T, u *user, resource string) string {
	t.Helper()
	var got api.GrantRequested
	out := u.must("grants", "request", resource, "--access", "write", "--for", "1h", "--reason", "fix ticket 42", "--json")
	if err := json.Unmarshal([]byte(out), &got); err != nil || !strings.HasPrefix(got.Review.ID, "g-") {
		t.Fatalf("grants request: %v\n%s", err, out)
	}
	return got.Review.ID
}

func TestSegregationOfDuties(t *testing.T) {
	t.Parallel()
	c := newCast(t, surfacesConfig)
	id := requestGrant(t, c.alice, "pg-prod")
	tests := []struct {
		name string
		who  *user
		args []string
		want string
	}{
		{"self-approval", c.alice, []string{"reviews", "approve", id}, "initiated review " + id + " and cannot decide it"},
		{"self-rejection", c.alice, []string{"reviews", "reject", id}, "cannot decide it"},
		{"same verified email, other identity", c.aliceAlt, []string{"reviews", "approve", id}, "cannot decide it"},
		{"not an approver", c.carol, []string{"reviews", "approve", id}, "may not decide reviews on pg-prod"},
		{"no groups at all", c.eve, []string{"reviews", "approve", id}, "may not decide reviews on pg-prod"},
		{"admin has no exemption", c.admin, []string{"reviews", "approve", id}, "may not decide reviews on pg-prod"},
		{"auditor", c.audit, []string{"reviews", "approve", id}, "may not decide"},
		{"resource token", c.db, []string{"reviews", "approve", id}, "database password"},
		{"unknown review", c.bob, []string{"reviews", "approve", "r-0000000000"}, `no review "r-0000000000"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.who.fails(tt.want, tt.args...) })
	}
	var r api.ReviewJSON
	if err := json.Unmarshal([]byte(c.bob.must("reviews", "show", id, "--json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != "pending" || r.Approvals != 0 || len(r.Votes) != 0 {
		t.Fatalf("after every refused attack the review is %s with %d votes", r.Status, len(r.Votes))
	}
	if out := c.bob.must("reviews", "approve", id, "--comment", "ok for 42"); !strings.Contains(out, "now approved, 1 of 1") {
		t.Fatalf("bob's approval: %s", out)
	}
	c.dave.fails("only a pending review can be decided", "reviews", "reject", id)
}

// TestConcurrentApprovalsCountOnce: twenty approvals at once from the
// same approver count once, through the API.
func TestConcurrentApprovalsCountOnce(t *testing.T) {
	t.Parallel()
	c := newCast(t, surfacesConfig)
	id := requestGrant(t, c.alice, "pg-two")
	hc, err := httpClient(c.bob.vars["COUNTERSIGN_CA_CERT"])
	if err != nil {
		t.Fatal(err)
	}
	url := c.bob.vars["COUNTERSIGN_SERVER"] + "/v1/reviews/" + id + "/approve"
	const n = 20
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"comment":"race"}`))
			req.Header.Set("Authorization", "Bearer "+c.tokens["bob"])
			resp, err := hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	// Connections dialed in the race but never used would hold the
	// gateway's shutdown for 5 s (net/http's grace for new connections).
	hc.CloseIdleConnections()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[200] != 1 || count[409] != n-1 {
		t.Fatalf("answers %v, want one 200 and %d 409", count, n-1)
	}
	var r api.ReviewJSON
	if err := json.Unmarshal([]byte(c.audit.must("reviews", "show", id, "--json")), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != "pending" || r.Approvals != 1 || len(r.Votes) != 1 {
		t.Fatalf("after 20 approvals by bob: %s, %d approvals, %d votes; want pending with 1", r.Status, r.Approvals, len(r.Votes))
	}
	c.dave.must("reviews", "approve", id)
	if out := c.audit.must("reviews", "show", id); !strings.Contains(out, "approved, 2 of 2 approvals") {
		t.Fatalf("after dave:\n%s", out)
	}
}

func TestReviewsListAndVisibility(t *testing.T) {
	t.Parallel()
	c := newCast(t, surfacesConfig)
	mine := requestGrant(t, c.alice, "pg-prod")
	carols := requestGrant(t, c.carol, "pg-two")
	rejected := requestGrant(t, c.carol, "pg-prod")
	if out := c.bob.must("reviews", "reject", rejected, "--comment", "not now"); !strings.Contains(out, "now rejected") {
		t.Fatalf("reject: %s", out)
	}
	tests := []struct {
		name      string
		who       *user
		args      []string
		want, not []string
	}{
		{"creator sees own", c.alice, []string{"reviews", "list"}, []string{mine}, []string{carols, rejected}},
		{"mine", c.carol, []string{"reviews", "list", "--mine"}, []string{carols, rejected}, []string{mine}},
		{"approver sees resource's", c.bob, []string{"reviews", "list"}, []string{mine, carols, rejected}, nil},
		{"to approve", c.bob, []string{"reviews", "list", "--to-approve"}, []string{mine, carols}, []string{rejected}},
		{"status", c.audit, []string{"reviews", "list", "--status", "rejected"}, []string{rejected}, []string{mine, carols}},
		{"auditor sees all", c.audit, []string{"reviews", "list"}, []string{mine, carols, rejected}, nil},
		{"no groups sees none", c.eve, []string{"reviews", "list"}, []string{"no reviews"}, []string{mine}},
		{"retro", c.bob, []string{"reviews", "list", "--retro"}, []string{"no reviews"}, []string{mine}},
		{"grants list", c.alice, []string{"grants", "list", "--mine"}, []string{mine, "write for 1h0m0s"}, []string{carols}},
		{"show", c.bob, []string{"reviews", "show", rejected}, []string{"rejected", "bob reject via cli", `"not now"`, "fix ticket 42"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.who.must(tt.args...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("shows %q:\n%s", n, out)
				}
			}
		})
	}
	c.eve.fails(fmt.Sprintf("no review %q that you may read", mine), "reviews", "show", mine)
	c.carol.fails("no review", "reviews", "show", mine)
	c.bob.fails("status=", "reviews", "list", "--status", "bogus")
}
