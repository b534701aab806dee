package mysql

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
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
		if guardConn != nil {
			if why := guardConn.refused.Load(); why != nil {
				return nil, fmt.Errorf("resource %q: %s", res.Name, *why)
			}
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
//
// The guard also reads every packet the server sends during the login
// (loginScan) and refuses, before go-mysql answers it, an auth plugin that
// would hand a man in the middle the password or something to crack
// (plaintextPluginRefusal): the initial handshake names one, and an
// AuthSwitchRequest (0xfe) may name any other.
type keyFetchGuard struct {
	net.Conn
	pinned  []byte                 // PEM, or nil
	refused atomic.Pointer[string] // why the guard stopped the login
	done    atomic.Bool
	scan    loginScan

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
			return 0, g.refuse("the upstream asked for caching_sha2_password full authentication without TLS; " +
				"the gateway will not fetch its RSA key in the clear: set tls.mode: require or verify-full for this resource")
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
	if g.done.Load() {
		return n, err
	}
	if why := g.scan.feed(p[:n], g.pinned != nil); why != "" {
		// The packet that names the plugin is not complete for go-mysql
		// until these bytes arrive; without them it cannot answer it.
		return 0, g.refuse(why)
	}
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

// refuse stops the login: why is for the gateway's log (dialUpstream
// returns it), the error for go-mysql.
func (g *keyFetchGuard) refuse(why string) error {
	g.refused.CompareAndSwap(nil, &why)
	return errors.New("countersign refused the upstream's login: " + why)
}

// maxLoginPacket bounds what loginScan keeps of one server packet during
// the login: a handshake, an auth switch, an RSA key or an error are a few
// hundred bytes. A longer one is refused rather than read past unchecked.
const maxLoginPacket = 16 << 10

// loginScan follows the packets a plaintext upstream sends during the login,
// from the initial handshake to the OK or ERR that ends it. Only go-mysql's
// login goroutine feeds it.
type loginScan struct {
	hdr     [4]byte
	hdrN    int
	left    int    // payload bytes of the current packet still to come
	body    []byte // the current packet's payload so far
	packets int    // packets completed
	over    bool   // the login's last packet went by
}

// feed takes the next bytes read from the upstream and says why the login
// must stop ("" while it may go on).
func (s *loginScan) feed(b []byte, pinned bool) string {
	for len(b) > 0 && !s.over {
		if s.hdrN < 4 {
			k := copy(s.hdr[s.hdrN:], b)
			s.hdrN += k
			b = b[k:]
			if s.hdrN < 4 {
				return ""
			}
			s.left = int(s.hdr[0]) | int(s.hdr[1])<<8 | int(s.hdr[2])<<16
			if s.left > maxLoginPacket {
				return fmt.Sprintf("the upstream sent a %d-byte packet during the login, far more than a login needs", s.left)
			}
			s.body = s.body[:0]
		}
		k := min(s.left, len(b))
		s.body = append(s.body, b[:k]...)
		s.left -= k
		b = b[k:]
		if s.left > 0 {
			return ""
		}
		s.hdrN = 0
		s.packets++
		if why := s.packet(s.body, s.packets == 1, pinned); why != "" {
			return why
		}
	}
	return ""
}

// packet checks one complete login packet from the server.
func (s *loginScan) packet(p []byte, first, pinned bool) string {
	switch {
	case len(p) == 0:
		return ""
	case p[0] == 0xff:
		s.over = true // ERR: go-mysql reports it
	case first && p[0] == 10:
		plugin, ok := handshakePlugin(p)
		if !ok {
			return "the upstream's initial handshake is malformed"
		}
		return plaintextPluginRefusal(plugin, pinned, "its initial handshake")
	case first:
		// Not protocol 10: go-mysql refuses it.
	case p[0] == 0x00:
		s.over = true // OK: logged in
	case p[0] == 0xfe:
		if len(p) == 1 {
			// The old AuthSwitchRequest: the pre-4.1 mysql_old_password.
			return plaintextPluginRefusal("mysql_old_password", pinned, "an auth switch")
		}
		end := bytes.IndexByte(p, 0)
		if end < 0 {
			return "the upstream's auth switch request is malformed"
		}
		return plaintextPluginRefusal(string(p[1:end]), pinned, "an auth switch")
	}
	return ""
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
			"(if the account really uses another plugin, set tls.mode: verify-full instead of pinning the key)", plugin, where)
	}
	switch plugin {
	case gomysql.AUTH_NATIVE_PASSWORD, gomysql.AUTH_CACHING_SHA2_PASSWORD, gomysql.AUTH_MARIADB_ED25519:
		return ""
	}
	return fmt.Sprintf("the upstream asked for the %s auth plugin in %s, without TLS: it would expose the password to anyone "+
		"on the path, so the gateway refuses it; set tls.mode: verify-full for this resource (or give the account "+
		"mysql_native_password, ed25519 or caching_sha2_password)", plugin, where)
}

// handshakePlugin reads the auth plugin a HandshakeV10 names, as go-mysql's
// readInitialHandshake reads it (mysql_native_password when none is
// named). ok is false when the packet is too short for that reading, or its
// plugin name has no end: the login stops there instead of letting
// go-mysql slice past the packet.
func handshakePlugin(p []byte) (plugin string, ok bool) {
	const (
		capSecureConnection = 0x00008000
		capPluginAuth       = 0x00080000
	)
	end := bytes.IndexByte(p[1:], 0)
	if end < 0 {
		return "", false
	}
	pos := 1 + end + 1
	// connection id 4, scramble 8, filler 1, capabilities (low) 2
	if len(p) < pos+15 {
		return "", false
	}
	caps := uint32(binary.LittleEndian.Uint16(p[pos+13:]))
	pos += 15
	if len(p) == pos {
		return gomysql.AUTH_NATIVE_PASSWORD, true
	}
	// character set 1, status 2, capabilities (high) 2, scramble length 1,
	// reserved 10
	if len(p) < pos+16 {
		return "", false
	}
	caps |= uint32(binary.LittleEndian.Uint16(p[pos+3:])) << 16
	scramble := int(p[pos+5])
	pos += 16
	if caps&capSecureConnection != 0 {
		pos += max(13, scramble-8)
	}
	if caps&capPluginAuth == 0 {
		return gomysql.AUTH_NATIVE_PASSWORD, true
	}
	if pos > len(p) {
		return "", false
	}
	end = bytes.IndexByte(p[pos:], 0)
	if end < 0 {
		return "", false
	}
	if end == 0 {
		return gomysql.AUTH_NATIVE_PASSWORD, true
	}
	return string(p[pos : pos+end]), true
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
