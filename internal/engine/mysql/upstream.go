package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// connectUpstream logs in to the resource with its own credentials.
// go-mysql's client does the login (mysql_native_password, MariaDB's
// client_ed25519, caching_sha2_password, sha256_password); after it the
// gateway uses its packet.Conn to relay raw packets.
func (c *conn) connectUpstream() bool {
	ctx, cancel := context.WithTimeout(c.ctx, upstreamConnectTimeout)
	defer cancel()
	db := c.db
	if db == "" {
		db = c.res.Database
	}
	if why := schemaRefusal(c.res, []string{db}); db != "" && why != "" {
		c.fail(erDBAccessDenied, "42000", why)
		return false
	}
	up, err := dialUpstream(ctx, c.res, db, c.caps)
	if err != nil {
		c.e.log.Warn("mysql upstream login failed", "session", c.id, "resource", c.res.Name, "error", err)
		c.fail(erAccessDenied, "28000", fmt.Sprintf("countersign could not log in to resource %q upstream; tell an admin (the gateway log has the cause)", c.res.Name))
		return false
	}
	c.up = up
	if !c.checkUpstreamMode() {
		return false
	}
	c.state.Schema = db
	c.status = statusAutocommit
	return true
}

// checkUpstreamMode refuses an upstream whose session starts with a
// quoting mode the gateway would misread (invariant 8).
func (c *conn) checkUpstreamMode() bool {
	r, err := c.up.Execute("SELECT @@SESSION.sql_mode")
	if err != nil || r.Resultset == nil || len(r.Values) != 1 {
		c.fail(erUnknown, "HY000", "countersign could not read the upstream's sql_mode; try again")
		return false
	}
	mode, _ := r.GetString(0, 0)
	if !sqlkind.MySQLSafeSQLMode(mode) {
		c.fail(erUnknown, "HY000", fmt.Sprintf(
			"resource %q runs with sql_mode %q, which changes how statements are quoted (ANSI_QUOTES, NO_BACKSLASH_ESCAPES, ...); countersign refuses it: ask an admin to change the server's default sql_mode", c.res.Name, mode))
		return false
	}
	return true
}

func dialUpstream(ctx context.Context, res *config.Resource, db string, clientCaps uint32) (*client.Conn, error) {
	tlsConf, err := upstreamTLS(res)
	if err != nil {
		return nil, err
	}
	var pinned []byte
	if f := res.UpstreamTLS.ServerPublicKeyFile; f != "" && tlsConf == nil {
		if pinned, err = os.ReadFile(f); err != nil {
			return nil, fmt.Errorf("reading tls.server_public_key_file of resource %q: %w", res.Name, err)
		}
	}
	var guardConn *keyFetchGuard
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// go-mysql uses ctx for the dial only: the deadline bounds the
		// login too, so an upstream that accepts and then hangs cannot hold
		// the session's start (or a grant-end KILL) forever.
		if dl, ok := ctx.Deadline(); ok {
			_ = nc.SetDeadline(dl)
		}
		if tlsConf == nil {
			guardConn = &keyFetchGuard{Conn: nc, pinned: pinned}
			return guardConn, nil
		}
		return nc, nil
	}
	opts := []client.Option{func(cc *client.Conn) error {
		cc.UnsetCapability(gomysql.CLIENT_QUERY_ATTRIBUTES)
		// The client capabilities that change what the server does for the
		// client are passed on as the client set them.
		for _, f := range []uint32{capFoundRows, capMultiStatements, capMultiResults, capPSMultiResults, capLocalFiles} {
			if clientCaps&f != 0 {
				cc.SetCapability(f)
			} else {
				cc.UnsetCapability(f)
			}
		}
		cc.SetCapability(gomysql.CLIENT_MULTI_RESULTS | gomysql.CLIENT_PS_MULTI_RESULTS)
		if err := cc.SetCollation("utf8mb4_general_ci"); err != nil {
			return err
		}
		cc.SetAttributes(map[string]string{"program_name": "countersign"})
		if tlsConf != nil {
			cc.SetTLSConfig(tlsConf)
		}
		return nil
	}}
	up, err := client.ConnectWithDialer(ctx, "tcp", res.Address, res.Username, res.Password, db, dialer, opts...)
	if err != nil {
		if guardConn != nil && guardConn.refused.Load() {
			return nil, errors.New("the upstream asked for caching_sha2_password full authentication without TLS; " +
				"the gateway will not fetch its RSA key in the clear: set tls.mode: require or verify-full for this resource")
		}
		return nil, err
	}
	if guardConn != nil {
		guardConn.done.Store(true)
	}
	_ = up.Conn.SetDeadline(time.Time{})
	return up, nil
}

// keyFetchGuard stands between go-mysql's client and a plaintext upstream
// socket during the login. go-mysql asks a caching_sha2 or sha256 server
// for its RSA public key (payload 0x02, or 0x01 for sha256_password) and
// encrypts the password to whatever key comes back: over plaintext anyone
// on the path could answer with their own key and read the password.
//
// Without a pinned key the request is refused (the login fails). With the
// resource's tls.server_public_key_file (caching_sha2 only), the request
// never reaches the server: the guard answers it itself with the pinned
// key, as the server would (AuthMoreData 0x01 + PEM), and renumbers the
// client's next packet, the encrypted password, as the server expects it
// (the server accepts an encrypted password without having been asked for
// its key, as MySQL's --server-public-key-path does). An impostor cannot
// decrypt it.
type keyFetchGuard struct {
	net.Conn
	pinned  []byte // PEM, or nil
	refused atomic.Bool
	done    atomic.Bool

	// Only go-mysql's login goroutine reads and writes during the login.
	inject   []byte // the pinned key's packet, served to the next Reads
	renumber bool   // the next packet written skips the two that never went
	fixRead  bool   // the server's answer to it is renumbered back
	fixAt    int    // bytes until that answer's sequence byte
}

func (g *keyFetchGuard) Write(b []byte) (int, error) {
	if g.done.Load() {
		return g.Conn.Write(b)
	}
	if len(b) == 5 && b[0] == 1 && b[1] == 0 && b[2] == 0 && (b[4] == 2 || b[4] == 1) {
		if b[4] != 2 || g.pinned == nil {
			g.refused.Store(true)
			return 0, errors.New("refusing to fetch the server's RSA key in plaintext")
		}
		payload := append([]byte{0x01}, g.pinned...)
		n := len(payload)
		g.inject = append([]byte{byte(n), byte(n >> 8), byte(n >> 16), b[3] + 1}, payload...)
		g.renumber = true
		return len(b), nil
	}
	if g.renumber && len(b) >= 4 {
		g.renumber = false
		c := append([]byte(nil), b...)
		c[3] -= 2
		if _, err := g.Conn.Write(c); err != nil {
			return 0, err
		}
		g.fixRead, g.fixAt = true, 3
		return len(b), nil
	}
	return g.Conn.Write(b)
}

func (g *keyFetchGuard) Read(p []byte) (int, error) {
	if len(g.inject) > 0 && !g.done.Load() {
		n := copy(p, g.inject)
		g.inject = g.inject[n:]
		return n, nil
	}
	n, err := g.Conn.Read(p)
	if g.fixRead {
		if g.fixAt < n {
			p[g.fixAt] += 2
			g.fixRead = false
		} else {
			g.fixAt -= n
		}
	}
	return n, err
}

// upstreamTLS builds the TLS configuration of a resource's tls block.
func upstreamTLS(res *config.Resource) (*tls.Config, error) {
	switch res.UpstreamTLS.Mode {
	case "", "disable":
		return nil, nil
	case "require":
		// require encrypts without checking the certificate, like
		// sslmode=require; verify-full is the mode to use in production.
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, nil //nolint:gosec
	case "verify-full":
		conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: res.UpstreamTLS.ServerName}
		if conf.ServerName == "" {
			host, _, err := net.SplitHostPort(res.Address)
			if err != nil {
				return nil, err
			}
			conf.ServerName = host
		}
		if res.UpstreamTLS.CAFile != "" {
			pem, err := os.ReadFile(res.UpstreamTLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading tls.ca_file of resource %q: %w", res.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls.ca_file of resource %q holds no PEM certificate", res.Name)
			}
			conf.RootCAs = pool
		}
		return conf, nil
	}
	return nil, fmt.Errorf("resource %q: unknown tls.mode %q (disable, require, verify-full)", res.Name, res.UpstreamTLS.Mode)
}
