package enginetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/recording"
)

// Token is the one token Auth accepts.
const Token = "cs-test-token"

// Auth accepts Token for any resource as alice (a local identity with the
// resources scope) and refuses anything else with the message a person
// would get.
type Auth struct{}

// AuthenticateResource is the engines' token check.
func (Auth) AuthenticateResource(_ context.Context, secret, resource string) (identity.Token, error) {
	if secret != Token {
		return identity.Token{}, errors.New("the token is not valid or has expired; run 'countersign connect " + resource + "' for a new one")
	}
	return identity.Token{ID: "t-1", Identity: identity.Identity{Issuer: identity.LocalIssuer, Subject: "alice", Email: "alice@example.com"},
		Scopes: []identity.Scope{identity.ScopeResources}}, nil
}

// Allow is the verdict that lets an operation run.
func Allow() guard.Verdict { return guard.Verdict{Decision: guard.Allow, Code: "allowed"} }

// Guard allows every connection, and every operation unless its rule
// (SetRule) says otherwise for the operation's text. It keeps what it
// decided and the outcomes it was told.
type Guard struct {
	mu       sync.Mutex
	rule     func(text string) guard.Verdict
	outcomes []guard.Outcome
	texts    []string
	ops      []guard.Operation
}

// Connect allows every session.
func (g *Guard) Connect(context.Context, *guard.Session) guard.Verdict { return Allow() }

// Decide keeps the operation and returns the rule's verdict on its text.
func (g *Guard) Decide(_ context.Context, _ *guard.Session, op *guard.Operation) guard.Verdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.texts = append(g.texts, op.Text)
	g.ops = append(g.ops, *op)
	if g.rule != nil {
		return g.rule(op.Text)
	}
	return Allow()
}

// Done keeps the outcome.
func (g *Guard) Done(_ context.Context, _ *guard.Session, _ *guard.Operation, _ guard.Verdict, out guard.Outcome) {
	g.mu.Lock()
	g.outcomes = append(g.outcomes, out)
	g.mu.Unlock()
}

// SetRule sets the verdict on an operation's text (nil: allow all).
func (g *Guard) SetRule(f func(string) guard.Verdict) {
	g.mu.Lock()
	g.rule = f
	g.mu.Unlock()
}

// Texts returns the texts of every operation decided so far, in order.
func (g *Guard) Texts() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.texts...)
}

// Ops returns every operation decided so far, in order.
func (g *Guard) Ops() []guard.Operation {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]guard.Operation(nil), g.ops...)
}

// Outcomes returns every outcome reported so far, in order.
func (g *Guard) Outcomes() []guard.Outcome {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]guard.Outcome(nil), g.outcomes...)
}

// LastOp returns the operation decided last (the zero Operation if none).
func (g *Guard) LastOp() guard.Operation {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.ops) == 0 {
		return guard.Operation{}
	}
	return g.ops[len(g.ops)-1]
}

// OpsOf returns the decided operations whose text is text.
func (g *Guard) OpsOf(text string) []guard.Operation {
	g.mu.Lock()
	defer g.mu.Unlock()
	return matching(g.ops, func(op guard.Operation) bool { return op.Text == text })
}

// Op returns the last decided operation whose text is text, and fails the
// test if there is none.
func (g *Guard) Op(t testing.TB, text string) guard.Operation {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := len(g.ops) - 1; i >= 0; i-- {
		if g.ops[i].Text == text {
			return g.ops[i]
		}
	}
	t.Fatalf("%q was not decided", text)
	return guard.Operation{}
}

// DenyIf is a rule that refuses texts containing substr.
func DenyIf(substr string) func(string) guard.Verdict {
	return func(text string) guard.Verdict {
		if strings.Contains(text, substr) {
			return guard.Verdict{Decision: guard.Deny, Code: "access_denied", Message: "refused by test policy: " + substr}
		}
		return Allow()
	}
}

// HoldIf is a rule that holds texts containing substr (as review r-test)
// until release receives a verdict, or the wait is withdrawn.
func HoldIf(substr string, release chan guard.Verdict) func(string) guard.Verdict {
	return func(text string) guard.Verdict {
		if !strings.Contains(text, substr) {
			return Allow()
		}
		return guard.Verdict{Decision: guard.Hold, Code: "approval_required", ReviewID: "r-test",
			Notice: "waiting for approval of review r-test",
			Wait: func(ctx context.Context) guard.Verdict {
				select {
				case v := <-release:
					return v
				case <-ctx.Done():
					return guard.Verdict{Code: "withdrawn", Message: "withdrawn"}
				}
			}}
	}
}

// Recorder keeps events in memory; it can be told to fail (SetFail) or to
// leave some commits unfinished (SetStall).
type Recorder struct {
	mu     sync.Mutex
	events []recording.Event
	fail   bool
	stall  func(recording.Event) bool
}

// Append keeps the event and finishes its commit at once, unless told
// to fail or to stall it.
func (r *Recorder) Append(_ context.Context, e recording.Event) *recording.Commit {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := recording.NewCommit()
	if r.fail {
		c.Finish(0, errors.New("test recorder told to fail"))
		return c
	}
	r.events = append(r.events, e)
	if r.stall != nil && r.stall(e) {
		return c
	}
	c.Finish(int64(len(r.events)), nil)
	return c
}

// SetFail makes every later Append fail (true) or succeed again (false).
func (r *Recorder) SetFail(b bool) {
	r.mu.Lock()
	r.fail = b
	r.mu.Unlock()
}

// SetStall leaves the commits of the events f picks unfinished: the
// recording never confirms them (nil: finish all).
func (r *Recorder) SetStall(f func(recording.Event) bool) {
	r.mu.Lock()
	r.stall = f
	r.mu.Unlock()
}

// OfType returns the kept events of type t, in order.
func (r *Recorder) OfType(t string) []recording.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return matching(r.events, func(e recording.Event) bool { return e.Type == t })
}

// Server is an engine as a test runs it.
type Server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// Serve runs s on a fresh loopback port until the test ends and returns
// the port's address. A shutdown that does not finish within 5 s is
// logged with every goroutine's stack, which shows what still holds on.
func Serve(t testing.TB, s Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			buf := make([]byte, 1<<20)
			t.Logf("shutdown: %v\n%s", err, buf[:runtime.Stack(buf, true)])
		}
	})
	return ln.Addr().String()
}

// SelfSigned is a server TLS config with a fresh self-signed certificate
// for 127.0.0.1 and localhost, valid for an hour. The certificate is its
// own CA, so a client can trust it by adding it to a root pool.
func SelfSigned() *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "countersign test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// matching returns the elements of xs for which keep holds, in order.
func matching[T any](xs []T, keep func(T) bool) []T {
	var out []T
	for _, x := range xs {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}
