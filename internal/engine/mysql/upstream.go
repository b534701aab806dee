package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/sqlkind"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
)

// connectUpstream logs in to the resource with its own credentials
// (login.go); after it the gateway relays raw packets.
func (c *conn) connectUpstream() bool {
	ctx, cancel := context.WithTimeout(c.ctx, c.res.UpstreamConnectTimeout())
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
	c.e.bulk.note(c.res.Name, up.bulk)
	// The login's deadline (connect_timeout) still bounds this first
	// query: an upstream that logs in and then stays silent cannot hold
	// the session's start.
	if !c.checkUpstreamMode() {
		return false
	}
	_ = up.SetDeadline(time.Time{})
	c.state.Schema = db
	c.status = statusAutocommit
	return true
}

// checkUpstreamMode refuses an upstream whose session starts with a
// quoting mode the gateway would misread (invariant 8).
//
// It also reads the connection id that KILL QUERY names (grant end,
// interrupt.go) from inside the session: the greeting's id arrives before
// TLS, where anyone on the path could change it to another connection's.
func (c *conn) checkUpstreamMode() bool {
	mode, id, err := readSessionStart(c.up)
	if err != nil {
		c.fail(erUnknown, "HY000", "countersign could not read the upstream's "+err.Error()+"; try again")
		return false
	}
	c.up.id = id
	if !sqlkind.MySQLSafeSQLMode(mode) {
		c.fail(erUnknown, "HY000", fmt.Sprintf(
			"resource %q runs with sql_mode %q, which changes how statements are quoted (ANSI_QUOTES, NO_BACKSLASH_ESCAPES, ...); countersign refuses it: ask an admin to change the server's default sql_mode", c.res.Name, mode))
		return false
	}
	return true
}

// readSessionStart reads the session's sql_mode and connection id; the
// error names what could not be read.
func readSessionStart(up *upstream) (mode string, id uint32, err error) {
	r, err := up.Execute("SELECT @@SESSION.sql_mode, CONNECTION_ID()")
	if err != nil || r.Resultset == nil || len(r.Values) != 1 || len(r.Fields) != 2 {
		return "", 0, errors.New("sql_mode")
	}
	n, err := r.GetUint(0, 1)
	if err != nil || n == 0 || n > math.MaxUint32 {
		return "", 0, errors.New("connection id")
	}
	mode, _ = r.GetString(0, 0)
	return mode, uint32(n), nil
}

// plaintextPluginRefusal says why a login without TLS must not go on with
// the plugin the upstream asked for, "" when it may. mysql_clear_password
// would send the password as it is, sha256_password sends it as it is or
// encrypted to a key fetched in the clear; so whoever is on the path could
// read it, and an unknown plugin is treated alike. With a pinned RSA key
// the resource is a caching_sha2_password server and nothing else: a
// switch to mysql_native_password (or client_ed25519) would give an
// impostor the scramble and its hash to crack offline.
func plaintextPluginRefusal(plugin string, pinned bool, where string) string {
	if pinned {
		if plugin == gomysql.AUTH_CACHING_SHA2_PASSWORD {
			return ""
		}
		return fmt.Sprintf("the upstream asked for the %s auth plugin in %s, without TLS, but tls.server_public_key_file pins "+
			"a caching_sha2_password server: only caching_sha2_password may log in; something on the path may be impersonating the server "+
			"(if the account really uses another plugin, set tls.mode: verify-full instead of pinning the key)", pluginName(plugin), where)
	}
	switch plugin {
	case gomysql.AUTH_NATIVE_PASSWORD, gomysql.AUTH_CACHING_SHA2_PASSWORD, gomysql.AUTH_MARIADB_ED25519:
		return ""
	}
	return fmt.Sprintf("the upstream asked for the %s auth plugin in %s, without TLS: it would expose the password to anyone "+
		"on the path, so the gateway refuses it; set tls.mode: verify-full for this resource (or give the account "+
		"mysql_native_password, ed25519 or caching_sha2_password)", pluginName(plugin), where)
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
