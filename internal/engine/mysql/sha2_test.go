package mysql

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// MariaDB has no caching_sha2_password, so this upstream is go-mysql's own
// server package demanding it, over TLS (full authentication, since its
// cache starts empty) and without TLS (refused: the gateway will not fetch
// the RSA key in the clear).
type sha2Handler struct{ server.EmptyHandler }

func (sha2Handler) HandleQuery(q string) (*gomysql.Result, error) {
	names, row := []string{"v"}, []interface{}{"1"}
	if strings.Contains(q, "sql_mode") { // with CONNECTION_ID()
		names, row = []string{"mode", "id"}, []interface{}{"STRICT_TRANS_TABLES", uint64(7)}
	}
	rs, err := gomysql.BuildSimpleTextResultset(names, [][]interface{}{row})
	if err != nil {
		return nil, err
	}
	return gomysql.NewResult(rs), nil
}

type sha2Creds struct{}

func (sha2Creds) CheckUsername(u string) (bool, error) { return u == "sha2user", nil }
func (sha2Creds) GetCredential(u string) (string, bool, error) {
	return "sha2pass", u == "sha2user", nil
}

func startSha2Upstream(t *testing.T, withTLS bool) string {
	t.Helper()
	var conf = serverTLS
	if !withTLS {
		conf = nil
	}
	return startSha2UpstreamConf(t, conf)
}

// startSha2UpstreamConf: go-mysql's server decrypts RSA-encrypted
// passwords with the key of conf's first certificate, TLS or not.
func startSha2UpstreamConf(t *testing.T, conf *tls.Config) string {
	t.Helper()
	srv := server.NewServer("8.0.36", 45, gomysql.AUTH_CACHING_SHA2_PASSWORD, nil, conf)
	// Not go-mysql's InMemoryProvider: that one always answers with fast
	// authentication; any other provider starts with an empty cache.
	creds := sha2Creds{}
	return serveUpstream(t, func(nc net.Conn) {
		c, err := srv.NewCustomizedConn(nc, creds, sha2Handler{})
		if err != nil {
			return
		}
		for c.HandleCommand() == nil {
		}
	})
}

// serveUpstream runs a test upstream on a loopback port: serve handles
// each connection, which is closed after it.
func serveUpstream(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				serve(nc)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestCachingSha2Upstream(t *testing.T) {
	ev := newEnv(t, nil)
	ev.res["my-sha2"] = &config.Resource{Name: "my-sha2", Type: "mysql", Address: startSha2Upstream(t, true),
		Username: "sha2user", Password: "sha2pass", UpstreamTLS: config.UpstreamTLS{Mode: "require"}}
	ev.res["my-sha2-plain"] = &config.Resource{Name: "my-sha2-plain", Type: "mysql", Address: startSha2Upstream(t, false),
		Username: "sha2user", Password: "sha2pass"}
	db := ev.open(t, "my-sha2", "")
	var v string
	if err := db.QueryRow("SELECT 1").Scan(&v); err != nil || v != "1" {
		t.Fatalf("v %q %v", v, err)
	}
	plain, err := sql.Open("mysql", ev.dsn("my-sha2-plain", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Ping(); err == nil || !strings.Contains(err.Error(), "could not log in") {
		t.Fatalf("plaintext caching_sha2 full auth was not refused: %v", err)
	}
}

// rsaServer is an RSA key and a TLS config carrying it, for a go-mysql
// server that decrypts passwords sent without TLS.
func rsaServer(t *testing.T) (*tls.Config, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
}

// Without TLS, caching_sha2 full authentication works only with the
// server's public key pinned (tls.server_public_key_file); a pinned key
// that is not the server's fails the login (the impostor's position: it
// cannot decrypt what was encrypted to the real key, nor hand out its own).
func TestCachingSha2PinnedKey(t *testing.T) {
	ev := newEnv(t, nil)
	conf, pub := rsaServer(t)
	_, otherPub := rsaServer(t)
	dir := t.TempDir()
	right, wrong := filepath.Join(dir, "right.pem"), filepath.Join(dir, "wrong.pem")
	if err := os.WriteFile(right, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrong, otherPub, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key string
		ok        bool
	}{
		{"pinned", right, true},
		{"pinned key of someone else", wrong, false},
		{"nothing pinned", "", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A fresh server each time: one that saw a login caches it
			// and answers the next with fast authentication.
			addr := startSha2UpstreamConf(t, conf)
			name := fmt.Sprintf("my-pin-%d", i)
			ev.res[name] = &config.Resource{Name: name, Type: "mysql", Address: addr, Username: "sha2user", Password: "sha2pass",
				UpstreamTLS: config.UpstreamTLS{Mode: "disable", ServerPublicKeyFile: tc.key}}
			db, err := sql.Open("mysql", ev.dsn(name, ""))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var v string
			err = db.QueryRow("SELECT 1").Scan(&v)
			if tc.ok && (err != nil || v != "1") {
				t.Fatalf("login with the pinned key: %q %v", v, err)
			}
			if !tc.ok && (err == nil || !strings.Contains(err.Error(), "could not log in")) {
				t.Fatalf("login: %v; want refused", err)
			}
		})
	}
}

// TestKillTargetFromSession: the connection id that KILL QUERY names
// comes from inside the (TLS) session, not from the greeting, which
// travels before TLS where anyone on the path could set it to another
// connection's id. This upstream's greeting says one id and its session
// another (7).
func TestKillTargetFromSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := &config.Resource{Name: "my-sha2", Type: "mysql", Address: startSha2Upstream(t, true),
		Username: "sha2user", Password: "sha2pass", UpstreamTLS: config.UpstreamTLS{Mode: "require"}}
	up, err := dialUpstream(ctx, res, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	greeting := up.GetConnectionID()
	_, id, err := readSessionStart(up)
	if err != nil {
		t.Fatal(err)
	}
	if id != 7 || greeting == 7 {
		t.Fatalf("session id %d, greeting id %d; want the session's 7, apart from the greeting's", id, greeting)
	}
}
