package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/countersign/countersign/internal/config"
	"github.com/jackc/pgx/v5/pgconn"
)

// upstreamConfig builds the connection to a resource with its own
// credentials. The client's allowed startup parameters are passed on; the
// password never leaves this config (pgconn does SCRAM-SHA-256, MD5 or
// cleartext as the server asks).
func upstreamConfig(res *config.Resource, params map[string]string) (*pgconn.Config, error) {
	host, portStr, err := net.SplitHostPort(res.Address)
	if err != nil {
		return nil, fmt.Errorf("resource %q: address %q is not host:port: %w", res.Name, res.Address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("resource %q: port %q is not a number", res.Name, portStr)
	}
	cfg, err := pgconn.ParseConfig("")
	if err != nil {
		return nil, fmt.Errorf("resource %q: %w", res.Name, err)
	}
	cfg.Host, cfg.Port = host, uint16(port)
	cfg.Database, cfg.User, cfg.Password = res.Database, res.Username, res.Password
	cfg.ConnectTimeout = res.UpstreamConnectTimeout()
	cfg.Fallbacks = nil
	// The gateway speaks protocol 3.0 to both sides.
	cfg.MinProtocolVersion, cfg.MaxProtocolVersion = "3.0", "3.0"
	cfg.RuntimeParams = map[string]string{}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	cfg.TLSConfig, err = upstreamTLS(res, host)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

func upstreamTLS(res *config.Resource, host string) (*tls.Config, error) {
	t := res.UpstreamTLS
	serverName := t.ServerName
	if serverName == "" {
		serverName = host
	}
	switch t.Mode {
	case "", "disable":
		return nil, nil
	case "require":
		// Encrypted, not authenticated: what libpq's sslmode=require does.
		return &tls.Config{InsecureSkipVerify: true, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil //nolint:gosec // the mode asks for it
	case "verify-full":
		c := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("resource %q: tls.ca_file: %w", res.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("resource %q: tls.ca_file %s holds no PEM certificate", res.Name, t.CAFile)
			}
			c.RootCAs = pool
		}
		return c, nil
	}
	return nil, fmt.Errorf("resource %q: tls.mode %q is not disable, require or verify-full", res.Name, t.Mode)
}

// connectUpstream logs in to the resource and takes over the raw
// connection. On failure the client gets 08006 and the cause goes to the
// log only (it may name the upstream user).
func (c *conn) connectUpstream() bool {
	cfg, err := upstreamConfig(c.res, c.params)
	if err == nil {
		err = c.dialUpstream(cfg)
	}
	if err != nil {
		c.e.log.Warn("postgres upstream connection failed", "session", c.id, "resource", c.res.Name, "error", err)
		c.fail(codeConnectionFailure, fmt.Sprintf(
			"countersign could not connect to the upstream of resource %q; try again later, or ask an admin to check the gateway log for session %s", c.res.Name, c.id))
		return false
	}
	return true
}

func (c *conn) dialUpstream(cfg *pgconn.Config) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.res.UpstreamConnectTimeout())
	defer cancel()
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	// search_path and the role are not reported by ParameterStatus before
	// PostgreSQL 18: read them once, then follow the session's statements.
	rows, err := pc.Exec(ctx, "SELECT current_setting('search_path'), current_user").ReadAll()
	if err != nil || len(rows) != 1 || len(rows[0].Rows) != 1 {
		pc.Close(ctx)
		return fmt.Errorf("reading the upstream's search_path: %v", err)
	}
	sp, role := string(rows[0].Rows[0][0]), string(rows[0].Rows[0][1])
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(ctx)
		return err
	}
	hj, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return err
	}
	c.up, c.fe = hj.Conn, hj.Frontend
	c.upKey = upstreamKey{pid: hj.PID, secret: hj.SecretKey, address: net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), tls: hj.TLSConfig,
		timeout: c.res.UpstreamConnectTimeout()}
	c.state.mu.Lock()
	for k, v := range hj.ParameterStatuses {
		c.state.params[k] = v
	}
	c.state.searchPath, c.state.role = sp, role
	c.state.mu.Unlock()
	c.state.tx.Store(uint32(hj.TxStatus))
	return nil
}

// flushUpstream writes the buffered messages to the upstream.
func (c *conn) flushUpstream() error {
	if len(c.upw) == 0 {
		return nil
	}
	_, err := c.up.Write(c.upw)
	if cap(c.upw) > 1<<20 {
		c.upw = nil
	} else {
		c.upw = c.upw[:0]
	}
	return err
}
