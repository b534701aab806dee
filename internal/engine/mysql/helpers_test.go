package mysql

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/recording"
	"github.com/countersign/countersign/internal/sqlkind"
	gomy "github.com/go-sql-driver/mysql"
)

// The real guard (internal/guard), recorder (internal/recording), token
// check (internal/identity) and classifier (internal/sqlkind) are swapped
// in by the e2e tests and cmd wiring; these small ones let the engine be
// tested on its own, against a real PostgreSQL.

const goodToken = "cs-test-token"

type testAuth struct{}

func (testAuth) AuthenticateResource(_ context.Context, secret, resource string) (identity.Token, error) {
	if secret != goodToken {
		return identity.Token{}, errors.New("the token is not valid or has expired; run 'countersign connect " + resource + "' for a new one")
	}
	return identity.Token{ID: "t-1", Identity: identity.Identity{Issuer: identity.LocalIssuer, Subject: "alice", Email: "alice@example.com"},
		Scopes: []identity.Scope{identity.ScopeResources}}, nil
}

// testGuard allows everything unless rule says otherwise for a text.
type testGuard struct {
	mu    sync.Mutex
	rule  func(text string) guard.Verdict // nil result Decision... see decide
	done  []guard.Outcome
	texts []string
	ops   []guard.Operation
}

func (g *testGuard) lastOp() guard.Operation {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.ops) == 0 {
		return guard.Operation{}
	}
	return g.ops[len(g.ops)-1]
}

func allow() guard.Verdict { return guard.Verdict{Decision: guard.Allow, Code: "allowed"} }

func (g *testGuard) Connect(context.Context, *guard.Session) guard.Verdict { return allow() }

func (g *testGuard) Decide(_ context.Context, _ *guard.Session, op *guard.Operation) guard.Verdict {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.texts = append(g.texts, op.Text)
	g.ops = append(g.ops, *op)
	if g.rule != nil {
		return g.rule(op.Text)
	}
	return allow()
}

func (g *testGuard) Done(_ context.Context, _ *guard.Session, _ *guard.Operation, _ guard.Verdict, out guard.Outcome) {
	g.mu.Lock()
	g.done = append(g.done, out)
	g.mu.Unlock()
}

func (g *testGuard) setRule(f func(string) guard.Verdict) {
	g.mu.Lock()
	g.rule = f
	g.mu.Unlock()
}

func denyIf(substr string) func(string) guard.Verdict {
	return func(text string) guard.Verdict {
		if strings.Contains(text, substr) {
			return guard.Verdict{Decision: guard.Deny, Code: "access_denied", Message: "refused by test policy: " + substr}
		}
		return allow()
	}
}

// holdIf holds texts containing substr until release receives a verdict.
func holdIf(substr string, release chan guard.Verdict) func(string) guard.Verdict {
	return func(text string) guard.Verdict {
		if !strings.Contains(text, substr) {
			return allow()
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

// memRecorder keeps events in memory and can be told to fail.
type memRecorder struct {
	mu     sync.Mutex
	events []recording.Event
	fail   bool
}

func (r *memRecorder) Append(_ context.Context, e recording.Event) *recording.Commit {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := recording.NewCommit()
	if r.fail {
		c.Finish(0, errors.New("test recorder told to fail"))
		return c
	}
	r.events = append(r.events, e)
	c.Finish(int64(len(r.events)), nil)
	return c
}

func (r *memRecorder) setFail(b bool) {
	r.mu.Lock()
	r.fail = b
	r.mu.Unlock()
}

func (r *memRecorder) ofType(t string) []recording.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recording.Event
	for _, e := range r.events {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// env is one engine in front of the test database.
type env struct {
	addr string
	g    *testGuard
	rec  *memRecorder
	e    *Engine
	res  map[string]*config.Resource
}

var serverTLS = selfSigned()

func newEnv(t testing.TB, tweak func(*Options)) *env {
	t.Helper()
	ev := &env{g: &testGuard{}, rec: &memRecorder{}, res: map[string]*config.Resource{}}
	ev.res["my-test"] = &config.Resource{Name: "my-test", Type: "mysql", Address: "127.0.0.1:3306", Database: testDB, Username: nativeUser, Password: userPass}
	ev.res["my-ed"] = &config.Resource{Name: "my-ed", Type: "mysql", Address: "127.0.0.1:3306", Database: testDB, Username: edUser, Password: userPass}
	ev.res["my-badpw"] = &config.Resource{Name: "my-badpw", Type: "mysql", Address: "127.0.0.1:3306", Database: testDB, Username: nativeUser, Password: "wrong"}
	ev.res["pg-x"] = &config.Resource{Name: "pg-x", Type: "postgres", Address: "127.0.0.1:5432"}
	o := Options{
		TLS:      serverTLS,
		Resource: func(n string) (*config.Resource, bool) { r, ok := ev.res[n]; return r, ok },
		Auth:     testAuth{}, Guard: ev.g, Recorder: ev.rec, Classifier: sqlkind.NewMySQL(sqlkind.MySQLOptions{}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if tweak != nil {
		tweak(&o)
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Logf("shutdown: %v", err)
		}
	})
	ev.addr, ev.e = ln.Addr().String(), e
	return ev
}

func init() {
	// The driver's named TLS config "cs" trusts the test certificate.
	pool := x509.NewCertPool()
	pool.AddCert(mustParse(serverTLS.Certificates[0].Certificate[0]))
	if err := gomy.RegisterTLSConfig("cs", &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
		panic(err)
	}
}

func mustParse(der []byte) *x509.Certificate {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

// dsn is a go-sql-driver DSN for the gateway: the resource as the user,
// the token as the password, TLS verified against the test certificate.
func (ev *env) dsn(res, extra string) string {
	d := fmt.Sprintf("%s:%s@tcp(%s)/?tls=cs&allowCleartextPasswords=true", res, goodToken, ev.addr)
	if extra != "" {
		d += "&" + extra
	}
	return d
}

func (ev *env) open(t *testing.T, res, extra string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", ev.dsn(res, extra))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func selfSigned() *tls.Config {
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
