package mysql

import (
	"database/sql"
	"net"
	"strings"
	"testing"

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
	val := "1"
	if strings.Contains(q, "sql_mode") {
		val = "STRICT_TRANS_TABLES"
	}
	rs, err := gomysql.BuildSimpleTextResultset([]string{"v"}, [][]interface{}{{val}})
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
	srv := server.NewServer("8.0.36", 45, gomysql.AUTH_CACHING_SHA2_PASSWORD, nil, conf)
	// Not go-mysql's InMemoryProvider: that one always answers with fast
	// authentication; any other provider starts with an empty cache.
	creds := sha2Creds{}
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
				c, err := srv.NewCustomizedConn(nc, creds, sha2Handler{})
				if err != nil {
					return
				}
				for c.HandleCommand() == nil {
				}
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
