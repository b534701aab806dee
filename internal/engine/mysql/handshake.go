package mysql

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/sqlkind"
)

// Capability flags (MySQL protocol).
const (
	capLongPassword    = 0x00000001
	capFoundRows       = 0x00000002
	capLongFlag        = 0x00000004
	capConnectWithDB   = 0x00000008
	capCompress        = 0x00000020
	capLocalFiles      = 0x00000080
	capIgnoreSpace     = 0x00000100
	capProtocol41      = 0x00000200
	capSSL             = 0x00000800
	capTransactions    = 0x00002000
	capSecureConn      = 0x00008000
	capMultiStatements = 0x00010000
	capMultiResults    = 0x00020000
	capPSMultiResults  = 0x00040000
	capPluginAuth      = 0x00080000
	capConnectAttrs    = 0x00100000
	capPluginAuthLenc  = 0x00200000
	capSessionTrack    = 0x00800000
	capDeprecateEOF    = 0x01000000
	capQueryAttributes = 0x08000000
)

// serverCaps are the capabilities the gateway offers. Left out on purpose:
// compression (the gateway reads every packet), session tracking and
// DEPRECATE_EOF (the relay parses results with classic EOF packets on both
// sides), query attributes (they change the COM_QUERY layout), IGNORE_SPACE
// (it changes how function names parse) and MariaDB's extended
// capabilities other than bulk execute (metadata caching, progress
// reports). Bulk execute is offered as bulkOffer says (bulk.go).
const serverCaps = capLongPassword | capFoundRows | capLongFlag | capConnectWithDB |
	capLocalFiles | capProtocol41 | capTransactions | capSecureConn | capMultiStatements |
	capMultiResults | capPSMultiResults | capPluginAuth | capConnectAttrs | capPluginAuthLenc

// serverVersion is what clients see; the suffix says who answers.
const serverVersion = "8.0.36-countersign"

const (
	pluginNative = "mysql_native_password"
	pluginClear  = "mysql_clear_password"
	// utf8mb4GeneralCI is the collation announced in the greeting.
	utf8mb4GeneralCI = 45
	statusAutocommit = 0x0002
	maxTokenLen      = 4096
)

// startup runs the connection phase up to the client's OK.
func (c *conn) startup() bool {
	_ = c.nc.SetDeadline(time.Now().Add(c.e.o.Limits.StartupTimeout))
	// Nothing large is legitimate before login: a handshake response with
	// attributes is a few hundred bytes.
	c.rd = newPacketReader(c.nc, 64<<10)
	if !c.greetClient() {
		return false
	}
	c.rd.seq = c.out.seq
	hr, ok := c.readHandshakeResponse()
	c.out.seq = c.rd.seq
	if !ok || !c.checkResponse(hr) {
		return false
	}
	if !c.authenticate() || !c.openSession() || !c.connectUpstream() {
		return false
	}
	if c.out.send(okPacket(c.status)) != nil {
		return false
	}
	_ = c.nc.SetDeadline(time.Time{})
	c.rd.max = c.e.o.Limits.MaxMessageBytes
	return true
}

// greetClient sends the Initial Handshake v10, offering mysql_native_password
// so that no client sends a cleartext password before TLS is up.
func (c *conn) greetClient() bool {
	c.salt = make([]byte, 20)
	var id [4]byte
	if _, err := rand.Read(c.salt); err != nil {
		return false
	}
	if _, err := rand.Read(id[:]); err != nil {
		return false
	}
	for i, b := range c.salt {
		// The scramble is NUL-terminated on the wire: no NULs inside.
		c.salt[i] = b%94 + 33
	}
	c.connID = binary.LittleEndian.Uint32(id[:]) & 0x7fffffff
	caps := uint32(serverCaps)
	if c.e.o.TLS != nil {
		caps |= capSSL
	}
	if c.e.bulk.offer() {
		// As MariaDB does: without CLIENT_MYSQL, the last four reserved
		// bytes carry the extended capabilities.
		caps &^= capLongPassword
		c.extOffered = extStmtBulkOperations
	}
	b := []byte{10}
	b = append(b, serverVersion...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint32(b, c.connID)
	b = append(b, c.salt[:8]...)
	b = append(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps))
	b = append(b, utf8mb4GeneralCI)
	b = binary.LittleEndian.AppendUint16(b, statusAutocommit)
	b = binary.LittleEndian.AppendUint16(b, uint16(caps>>16))
	b = append(b, 21)
	b = append(b, make([]byte, 6)...)
	b = binary.LittleEndian.AppendUint32(b, c.extOffered)
	b = append(b, c.salt[8:]...)
	b = append(b, 0)
	b = append(b, pluginNative...)
	b = append(b, 0)
	c.out.reset(0)
	return c.out.send(b) == nil
}

// handshakeResponse is the client's HandshakeResponse41.
type handshakeResponse struct {
	caps    uint32
	ext     uint32 // MariaDB's extended capabilities; 0 when CLIENT_MYSQL is set
	charset byte
	user    string
	db      string
	plugin  string
	attrs   map[string]string
}

// readHandshakeResponse reads the response, upgrading to TLS first when
// the client asks with an SSLRequest.
func (c *conn) readHandshakeResponse() (*handshakeResponse, bool) {
	p, err := c.rd.next()
	if err != nil {
		return nil, false
	}
	if len(p) == 32 && binary.LittleEndian.Uint32(p)&capSSL != 0 {
		if !c.startTLS() {
			return nil, false
		}
		if p, err = c.rd.next(); err != nil {
			return nil, false
		}
	}
	hr, err := parseHandshakeResponse(p)
	if err != nil {
		c.fail(erMalformedPacket, "08S01", "malformed handshake response: "+err.Error())
		return nil, false
	}
	return hr, true
}

func (c *conn) startTLS() bool {
	if c.e.o.TLS == nil || c.isTLS {
		c.fail(erMalformedPacket, "08S01", "TLS was not offered")
		return false
	}
	tc := tls.Server(c.nc, c.e.o.TLS)
	if err := tc.HandshakeContext(c.ctx); err != nil {
		c.e.log.Info("mysql client TLS handshake failed", "client", c.nc.RemoteAddr().String(), "error", err)
		return false
	}
	seq := c.rd.seq
	// A new reader: nothing sent in plaintext behind the SSLRequest is read
	// as if it had come through TLS.
	c.cc, c.isTLS = tc, true
	c.rd = newPacketReader(tc, c.rd.max)
	c.rd.seq = seq
	c.out.setConn(tc)
	return true
}

var errShort = errors.New("packet too short")

// parseHandshakeResponse decodes HandshakeResponse41. The auth response
// (a native-password scramble of whatever the client holds) is skipped:
// the token is asked for in clear only after the checks below.
func parseHandshakeResponse(p []byte) (*handshakeResponse, error) {
	cur := &cursor{b: p}
	hr := &handshakeResponse{}
	hr.caps = cur.u32()
	cur.u32() // max packet size
	hr.charset = cur.u8()
	if filler := cur.bytes(23); len(filler) == 23 && hr.caps&capLongPassword == 0 {
		hr.ext = binary.LittleEndian.Uint32(filler[19:])
	}
	hr.user = string(cur.nulString())
	if cur.bad {
		return nil, errShort
	}
	if hr.caps&capProtocol41 == 0 {
		return nil, errors.New("the client does not speak protocol 4.1")
	}
	switch {
	case hr.caps&capPluginAuthLenc != 0:
		cur.lenencBytes()
	case hr.caps&capSecureConn != 0:
		cur.bytes(int(cur.u8()))
	default:
		cur.nulString()
	}
	if hr.caps&capConnectWithDB != 0 && len(cur.b) > 0 {
		hr.db = string(cur.nulString())
	}
	if hr.caps&capPluginAuth != 0 && len(cur.b) > 0 {
		hr.plugin = string(cur.nulString())
	}
	if hr.caps&capConnectAttrs != 0 && len(cur.b) > 0 {
		hr.attrs = parseAttrs(cur.lenencBytes())
	}
	if cur.bad {
		return nil, errShort
	}
	return hr, nil
}

func parseAttrs(b []byte) map[string]string {
	m := map[string]string{}
	cur := &cursor{b: b}
	for len(cur.b) > 0 && !cur.bad && len(m) < 64 {
		k := cur.lenencBytes()
		v := cur.lenencBytes()
		if !cur.bad {
			m[string(k)] = string(v)
		}
	}
	return m
}

// utf8Collations are the collation ids of utf8 (utf8mb3) and utf8mb4 that
// fit the handshake's one byte. Any other client character set could make
// the gateway read statement text differently from the server.
func utf8Collation(id byte) bool {
	switch {
	case id == 33, id == 83, id == 45, id == 46, id == 255:
		return true
	case id >= 192 && id <= 215, id >= 224 && id <= 247:
		return true
	}
	return false
}

// checkResponse finds the resource and checks the client's options.
func (c *conn) checkResponse(hr *handshakeResponse) bool {
	c.caps = hr.caps & (serverCaps | capSSL)
	c.clientExt = hr.ext & c.extOffered
	if hr.caps&(capCompress|capIgnoreSpace) != 0 {
		c.fail(erAccessDenied, "28000", "countersign does not support protocol compression or IGNORE_SPACE; connect without --compress")
		return false
	}
	if !utf8Collation(hr.charset) {
		c.fail(erAccessDenied, "28000", fmt.Sprintf(
			"character set id %d is not allowed: countersign reads statements as utf8mb4; connect with --default-character-set=utf8mb4", hr.charset))
		return false
	}
	res, ok := c.e.o.Resource(hr.user)
	if !ok || res.Type != "mysql" {
		c.fail(erAccessDenied, "28000", fmt.Sprintf(
			"%q is not a MySQL resource of this gateway; give the resource name as the user (-u RESOURCE), or run 'countersign connect RESOURCE'", hr.user))
		return false
	}
	c.res, c.db = res, hr.db
	c.multi = hr.caps&capMultiStatements != 0
	c.sess = &guard.Session{Resource: res.Name, Dialect: sqlkind.MySQL,
		ClientAddr: c.nc.RemoteAddr().String(), ClientProgram: hr.attrs["program_name"], Interrupt: c.interrupt}
	return true
}

// authenticate switches the client to mysql_clear_password, once the
// connection is safe to send a token on, and checks the token.
func (c *conn) authenticate() bool {
	if !c.isTLS && !(c.e.o.AllowPlaintextLoopback && isLoopback(c.nc.RemoteAddr())) {
		// Refuse before asking, so the client never sends its token in the clear.
		c.fail(erSecureTransport, "HY000",
			"connections using insecure transport are prohibited: connect with TLS (mysql --ssl-mode=REQUIRED, mariadb --ssl); countersign does not accept tokens in plaintext")
		return false
	}
	sw := append([]byte{0xfe}, pluginClear...)
	sw = append(sw, 0)
	if c.out.send(sw) != nil {
		return false
	}
	c.rd.seq = c.out.seq
	c.rd.max = maxTokenLen
	p, err := c.rd.next()
	if err != nil {
		return false
	}
	c.out.seq = c.rd.seq
	secret := string(bytes.TrimRight(p, "\x00"))
	ctx, cancel := context.WithTimeout(c.ctx, c.e.o.Limits.StartupTimeout)
	defer cancel()
	tok, aerr := c.e.o.Auth.AuthenticateResource(ctx, secret, c.res.Name)
	if aerr != nil {
		c.e.log.Info("mysql client authentication failed", "client", c.sess.ClientAddr, "resource", c.res.Name, "error", aerr)
		c.fail(erAccessDenied, "28000", fmt.Sprintf("access denied for resource %q: %v; get a token with 'countersign connect %s' and give it as the password", c.res.Name, aerr, c.res.Name))
		return false
	}
	c.sess.Identity = tok.Identity
	c.actor = tok.Identity.Key()
	return true
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// openSession asks the guard and records session.open durably.
func (c *conn) openSession() bool {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		c.fail(erUnknown, "HY000", "countersign could not make a session id; try again")
		return false
	}
	c.id = "s-" + hex.EncodeToString(b[:])
	c.sess.ID = c.id
	ctx, cancel := context.WithTimeout(c.ctx, c.e.o.Limits.StartupTimeout)
	defer cancel()
	if v := c.e.o.Guard.Connect(ctx, c.sess); v.Decision != guard.Allow {
		msg := v.Message
		if msg == "" {
			msg = fmt.Sprintf("you may not connect to resource %q; ask an admin to add one of your groups to its policy.access", c.res.Name)
		}
		c.fail(erSpecificAccess, "42000", msg)
		return false
	}
	if err := c.e.recordOpen(ctx, c); err != nil {
		c.e.log.Error("recording session.open failed", "session", c.id, "error", err)
		c.fail(erUnknown, "HY000", "countersign could not record the session, so it was refused; try again, and tell an admin if it persists")
		return false
	}
	c.opened = true
	return true
}
