package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/review"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/countersign/countersign/internal/store"
	"github.com/countersign/countersign/internal/webhook"
)

// waitFor bounds every wait for a delivery; it is a safety net, never an
// assertion on how long delivery takes.
const waitFor = 20 * time.Second

// hit is one request the receiver got.
type hit struct {
	header http.Header
	body   []byte
}

// receiver is a real HTTP server standing in for Slack or a chat bot. It
// answers each request with the next status of script (then 200).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	hits   []hit
	script []int
	got    chan struct{}
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	rc := &receiver{script: script, got: make(chan struct{}, 100)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.hits = append(rc.hits, hit{header: r.Header.Clone(), body: body})
		status := http.StatusOK
		if len(rc.script) > 0 {
			status, rc.script = rc.script[0], rc.script[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
		rc.got <- struct{}{}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// await waits until the receiver holds n requests.
func (rc *receiver) await(t *testing.T, n int) []hit {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		rc.mu.Lock()
		if len(rc.hits) >= n {
			out := append([]hit(nil), rc.hits...)
			rc.mu.Unlock()
			return out
		}
		rc.mu.Unlock()
		select {
		case <-rc.got:
		case <-deadline:
			t.Fatalf("the receiver got %d request(s), want %d", len(rc.all()), n)
		}
	}
}

func (rc *receiver) all() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

// fast retries at once, so tests do not sleep through backoff.
func fast(o webhook.Options) webhook.Options {
	o.Backoff, o.MaxBackoff = time.Millisecond, 2*time.Millisecond
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func someEvent(kind review.EventKind, text string) review.Event {
	return review.Event{Kind: kind, At: time.Now(), Review: review.Review{
		ID: "r-0123456789", Type: review.TypeOperation, Resource: "pg-prod", Kind: sqlkind.Write,
		Text: text, Digest: []byte{1, 2, 3}, Status: review.StatusPending, Required: 1,
		Approvers: []string{"dba-leads"}, ExpiresAt: time.Now().Add(time.Hour),
		Initiator: identity.Identity{Issuer: "https://idp", Subject: "alice", Email: "alice@example.com"},
	}}
}

// recorder keeps review events in memory; the recording itself is not
// what these tests are about.
type recorder struct{}

func (recorder) Append(context.Context, recording.Event) *recording.Commit {
	c := recording.NewCommit()
	c.Finish(1, nil)
	return c
}

var roles = map[string][]string{"engineers": {"creator"}, "dba-leads": {"approver"}, "sre": {"creator", "breakglass"}}

func person(subject string, groups ...string) identity.Identity {
	tbl := map[string][]identity.Role{}
	for g, rs := range roles {
		for _, r := range rs {
			tbl[g] = append(tbl[g], identity.Role(r))
		}
	}
	return identity.Identity{Issuer: "https://idp", Subject: subject, Email: subject + "@example.com", EmailVerified: true,
		Groups: groups, Roles: identity.RolesFor(groups, tbl), Source: identity.SourceOIDC, AuthTime: time.Now()}
}

// reviews is a real review service on a real SQLite store whose events go
// to the notifier.
func reviews(t *testing.T, n *webhook.Notifier) *review.Service {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "countersign.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p, err := policy.Compile(config.Resource{Name: "pg-prod", Type: "postgres", Policy: config.Policy{
		Access: []string{"engineers", "dba-leads", "sre"},
		Review: config.Review{Kinds: []string{"write"}, Approvers: []string{"dba-leads"}, Approvals: 1},
		Grants: config.Grants{MaxDuration: time.Hour},
	}}, roles)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := review.New(review.Options{Store: st, Policies: map[string]*policy.Policy{"pg-prod": p},
		Recorder: recorder{}, Logger: slog.New(slog.DiscardHandler), Events: n.Notify})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestReviewLifecycleDelivered: the review service's events reach a real
// HTTP receiver, signed so the receiver can verify them, in both formats.
func TestReviewLifecycleDelivered(t *testing.T) {
	secret := []byte("a shared secret of some length")
	cases := []struct {
		name   string
		format string
		secret []byte
	}{
		{"json signed", "json", secret},
		{"slack signed", "slack", secret},
		{"json unsigned", "json", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t)
			n := webhook.New([]config.Webhook{{URL: rc.srv.URL + "/hook", Format: tc.format, Secret: tc.secret}}, fast(webhook.Options{}))
			defer n.Close()
			svc := reviews(t, n)
			ctx := context.Background()
			alice, bob := person("alice", "engineers"), person("bob", "dba-leads")
			r, err := svc.Create(ctx, review.Request{Type: review.TypeOperation, Resource: "pg-prod", Dialect: "postgres",
				Initiator: alice, Kind: sqlkind.Write, Text: "UPDATE t SET x = 1 /* <!channel> */", Digest: []byte("d")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Approve(ctx, r.ID, review.Actor{Identity: bob, Via: "api", Scopes: []identity.Scope{identity.ScopeAPI}}, "ok"); err != nil {
				t.Fatal(err)
			}
			hits := rc.await(t, 2)
			wantEvents := []string{"review.created", "review.approved"}
			for i, h := range hits {
				if got := h.header.Get(webhook.EventHeader); got != wantEvents[i] {
					t.Errorf("delivery %d: event %q, want %q", i, got, wantEvents[i])
				}
				sig, ts := h.header.Get(webhook.SignatureHeader), h.header.Get(webhook.TimestampHeader)
				if tc.secret == nil {
					if sig != "" {
						t.Errorf("an unsigned webhook sent a signature %q", sig)
					}
				} else if err := webhook.Verify(tc.secret, sig, ts, h.body, time.Now(), 5*time.Minute); err != nil {
					t.Errorf("delivery %d does not verify: %v", i, err)
				}
				checkBody(t, tc.format, h.body, r.ID)
			}
		})
	}
}

func checkBody(t *testing.T, format string, body []byte, id string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	if format == "slack" {
		text, _ := m["text"].(string)
		if len(m) != 1 || !strings.Contains(text, id) {
			t.Errorf("slack body should be only {\"text\": ...} naming %s: %s", id, body)
		}
		if strings.Contains(text, "<!channel>") {
			t.Errorf("a statement pinged the whole channel: %s", text)
		}
		return
	}
	rv, _ := m["review"].(map[string]any)
	if rv["id"] != id || m["summary"] == "" || m["delivery"] == "" {
		t.Errorf("json body lacks the review, a summary or the delivery id: %s", body)
	}
}

// TestRetries: 5xx and 429 answers are retried with the same delivery id
// until one succeeds or the attempts run out; a 4xx is not retried.
func TestRetries(t *testing.T) {
	cases := []struct {
		name        string
		script      []int
		maxAttempts int
		attempts    int
		dropped     uint64
	}{
		{"500 then success", []int{500, 502}, 5, 3, 0},
		{"429 then success", []int{429}, 5, 2, 0},
		{"always 503 gives up", []int{503, 503, 503, 503}, 3, 3, 1},
		{"400 is not retried", []int{400}, 5, 1, 1},
		{"success at once", nil, 5, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, tc.script...)
			n := webhook.New([]config.Webhook{{URL: rc.srv.URL, Secret: []byte("s3cret-s3cret")}}, fast(webhook.Options{MaxAttempts: tc.maxAttempts}))
			n.Notify(context.Background(), someEvent(review.EventCreated, "DELETE FROM t"))
			rc.await(t, tc.attempts)
			if tc.dropped > 0 {
				waitDropped(t, n, tc.dropped)
			}
			n.Close() // waits for the worker: no attempt can follow
			hits := rc.all()
			if len(hits) != tc.attempts {
				t.Fatalf("%d attempts, want %d", len(hits), tc.attempts)
			}
			for _, h := range hits[1:] {
				if h.header.Get(webhook.DeliveryHeader) != hits[0].header.Get(webhook.DeliveryHeader) {
					t.Errorf("a retry changed the delivery id, so a receiver cannot drop duplicates")
				}
				if !bytes.Equal(h.body, hits[0].body) {
					t.Errorf("a retry changed the body")
				}
			}
			if got := n.Dropped(); got != tc.dropped {
				t.Errorf("Dropped() = %d, want %d", got, tc.dropped)
			}
		})
	}
}

func waitDropped(t *testing.T, n *webhook.Notifier, want uint64) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for n.Dropped() < want {
		if time.Now().After(deadline) {
			t.Fatalf("Dropped() = %d, want %d", n.Dropped(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestVerifyRefuses attacks the receiver's check: a changed body, another
// secret, a replayed (old) or future timestamp, a malformed header.
func TestVerifyRefuses(t *testing.T) {
	secret := []byte("the real secret")
	body := []byte(`{"event":"review.created"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := "1800000000"
	good := webhook.Sign(secret, ts, body)
	if err := webhook.Verify(secret, good, ts, body, now, time.Minute); err != nil {
		t.Fatalf("a good delivery does not verify: %v", err)
	}
	cases := []struct {
		name      string
		secret    []byte
		signature string
		timestamp string
		body      []byte
	}{
		{"body changed", secret, good, ts, []byte(`{"event":"review.approved"}`)},
		{"other secret", []byte("not the secret"), good, ts, body},
		{"signed by another secret", secret, webhook.Sign([]byte("attacker"), ts, body), ts, body},
		{"timestamp swapped", secret, good, "1800000001", body},
		{"replayed an hour later", secret, webhook.Sign(secret, "1799996400", body), "1799996400", body},
		{"from the future", secret, webhook.Sign(secret, "1800003600", body), "1800003600", body},
		{"timestamp not a number", secret, good, "yesterday", body},
		{"no sha256= prefix", secret, strings.TrimPrefix(good, "sha256="), ts, body},
		{"empty signature", secret, "", ts, body},
		{"no secret to verify with", nil, good, ts, body},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := webhook.Verify(tc.secret, tc.signature, tc.timestamp, tc.body, now, time.Minute); err == nil {
				t.Fatal("verified")
			}
		})
	}
}

// TestRedirectNotFollowed: a receiver that redirects cannot make the
// gateway send a signed body somewhere else.
func TestRedirectNotFollowed(t *testing.T) {
	elsewhere := newReceiver(t)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.srv.URL, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	n := webhook.New([]config.Webhook{{URL: redirect.URL, Secret: []byte("s3cret-s3cret")}}, fast(webhook.Options{}))
	n.Notify(context.Background(), someEvent(review.EventCreated, "DELETE FROM t"))
	waitDropped(t, n, 1) // a 307 is a 4xx-like refusal: not retried, dropped
	n.Close()
	if got := len(elsewhere.all()); got != 0 {
		t.Fatalf("the redirect target got %d request(s)", got)
	}
}

// TestURLTokenNotLogged: a webhook URL often holds a token in its path
// (Slack's do); failures are logged by host only.
func TestURLTokenNotLogged(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL + "/services/T000/B000/XXXXtokenXXXX"
	dead.Close() // connection refused from now on
	var logs bytes.Buffer
	var mu sync.Mutex
	h := slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug})
	n := webhook.New([]config.Webhook{{URL: url}}, fast(webhook.Options{MaxAttempts: 2, Logger: slog.New(h)}))
	n.Notify(context.Background(), someEvent(review.EventCreated, "DELETE FROM t"))
	waitDropped(t, n, 1)
	n.Close()
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logs.String(), "XXXXtokenXXXX") {
		t.Fatalf("the webhook URL's token reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "not delivered") {
		t.Fatalf("the failed delivery was not logged:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestFullQueueDrops: Notify never blocks the review change; beyond the
// queue it drops and counts.
func TestFullQueueDrops(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer slow.Close()
	defer close(release)
	n := webhook.New([]config.Webhook{{URL: slow.URL}}, fast(webhook.Options{QueueSize: 1}))
	defer n.Close()
	for range 5 {
		n.Notify(context.Background(), someEvent(review.EventCreated, "DELETE FROM t"))
	}
	// One may be with the worker and one queued; the rest were dropped.
	if got := n.Dropped(); got < 3 {
		t.Fatalf("Dropped() = %d after 5 notifications on a queue of 1, want at least 3", got)
	}
}

// TestRedact: the body passes through the redactor before it leaves, so a
// webhook carries no more than the recording.
func TestRedact(t *testing.T) {
	rc := newReceiver(t)
	redact := func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("4111111111111111"), []byte("[redacted]")) }
	n := webhook.New([]config.Webhook{{URL: rc.srv.URL, Format: "slack"}}, fast(webhook.Options{Redact: redact}))
	defer n.Close()
	n.Notify(context.Background(), someEvent(review.EventCreated, "UPDATE cards SET pan = '4111111111111111'"))
	h := rc.await(t, 1)[0]
	if bytes.Contains(h.body, []byte("4111111111111111")) {
		t.Fatalf("an unredacted value left the gateway: %s", h.body)
	}
}

// TestUrgentNotJammed: a flood of ordinary reviews fills the queue, yet a
// break-glass or grant notification is neither dropped nor kept behind
// them: it goes out next.
func TestUrgentNotJammed(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		mu.Lock()
		order = append(order, r.Header.Get("X-Countersign-Event"))
		mu.Unlock()
	}))
	defer srv.Close()
	n := webhook.New([]config.Webhook{{URL: srv.URL}}, fast(webhook.Options{QueueSize: 2}))
	defer n.Close()
	ctx := context.Background()
	for range 10 {
		n.Notify(ctx, someEvent(review.EventCreated, "DELETE FROM t"))
	}
	dropped := n.Dropped()
	if dropped == 0 {
		t.Fatal("the flood did not fill the queue; the test proves nothing")
	}
	n.Notify(ctx, someEvent(review.EventBreakglass, "DROP TABLE t"))
	if n.Dropped() != dropped {
		t.Fatal("the break-glass notification was dropped behind a flood of reviews")
	}
	close(release)
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		got := append([]string(nil), order...)
		mu.Unlock()
		if len(got) >= 2 {
			// At most one review was already with the worker when the
			// break-glass notification came; it must go out next.
			if got[0] != string(review.EventBreakglass) && got[1] != string(review.EventBreakglass) {
				t.Fatalf("delivery order %v: break-glass waited behind the queued reviews", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %v delivered", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
