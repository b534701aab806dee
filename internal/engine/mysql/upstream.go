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
	var guardConn *keyFetchGuard
	dialer := func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tlsConf == nil {
			guardConn = &keyFetchGuard{Conn: nc}
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
	return up, nil
}

// keyFetchGuard refuses the one client packet that asks a caching_sha2 or
// sha256 server for its RSA public key (payload 0x02, or 0x01 for
// sha256_password) over a plaintext connection: a key fetched in the clear
// can be swapped by anyone on the path, who then reads the password.
// go-mysql fetches it without asking, so the gateway guards the socket.
type keyFetchGuard struct {
	net.Conn
	refused atomic.Bool
	done    atomic.Bool
}

func (g *keyFetchGuard) Write(b []byte) (int, error) {
	if !g.done.Load() && len(b) == 5 && b[0] == 1 && b[1] == 0 && b[2] == 0 && (b[4] == 2 || b[4] == 1) {
		g.refused.Store(true)
		return 0, errors.New("refusing to fetch the server's RSA key in plaintext")
	}
	return g.Conn.Write(b)
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
