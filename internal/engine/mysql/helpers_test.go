package mysql

import (
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/sqlkind"
	gomy "github.com/go-sql-driver/mysql"
)

// env is one engine in front of the test database.
type env struct {
	addr string
	g    *enginetest.Guard
	rec  *enginetest.Recorder
	e    *Engine
	res  map[string]*config.Resource
}

var serverTLS = enginetest.SelfSigned()

func newEnv(t testing.TB, tweak func(*Options)) *env {
	t.Helper()
	ev := &env{g: &enginetest.Guard{}, rec: &enginetest.Recorder{}, res: map[string]*config.Resource{}}
	ev.res["my-test"] = &config.Resource{Name: "my-test", Type: "mysql", Address: "127.0.0.1:3306", Database: testDB, Username: nativeUser, Password: userPass}
	ev.res["my-ed"] = &config.Resource{Name: "my-ed", Type: "mysql", Address: "127.0.0.1:3306", Database: testDB, Username: edUser, Password: userPass}
	ev.res["my-badpw"] = &config.Resource{Name: "my-badpw", Type: "mysql", Address: "127.0.0.1:3306", Database: testDB, Username: nativeUser, Password: "wrong"}
	ev.res["pg-x"] = &config.Resource{Name: "pg-x", Type: "postgres", Address: "127.0.0.1:5432"}
	o := Options{
		TLS:      serverTLS,
		Resource: func(n string) (*config.Resource, bool) { r, ok := ev.res[n]; return r, ok },
		Auth:     enginetest.Auth{}, Guard: ev.g, Recorder: ev.rec, Classifier: sqlkind.NewMySQL(sqlkind.MySQLOptions{}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if tweak != nil {
		tweak(&o)
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ev.addr, ev.e = enginetest.Serve(t, e), e
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
	d := fmt.Sprintf("%s:%s@tcp(%s)/?tls=cs&allowCleartextPasswords=true", res, enginetest.Token, ev.addr)
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
