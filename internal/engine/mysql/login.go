package mysql

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/countersign/countersign/internal/config"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/packet"
)

// The gateway logs in to the upstream itself (this file) instead of with
// go-mysql's client, which did it up to v1.13: that client writes the
// handshake response's reserved bytes as zeros and always sets
// CLIENT_MYSQL, and has no hook to change either, so it cannot ask MariaDB
// for an extended capability such as MARIADB_CLIENT_STMT_BULK_OPERATIONS
// (bulk.go). Patching its bytes on the socket works only without TLS (the
// response then travels inside TLS), so the smaller sound change is a login
// of our own. It also replaces the socket guard that watched go-mysql's
// login: the plugin checks and the pinned RSA key now sit in the one place
// that answers the server. go-mysql still provides the framing
// (packet.Conn) after the login and the password scrambles.

// MariaDB's extended capabilities: bits 32 and up of the capability flags,
// sent in the last four reserved bytes of the greeting and of the
// handshake response by a side that leaves CLIENT_MYSQL (bit 0) unset.
const extStmtBulkOperations = 1 << (34 - 32) // MARIADB_CLIENT_STMT_BULK_OPERATIONS

// upstream is the session's connection to its resource once logged in:
// go-mysql's packet framing, and what the login agreed on.
type upstream struct {
	*packet.Conn // writes only: reads go through br (upread.go)
	br           *bufio.Reader
	buf          []byte // a packet larger than br's buffer, reused
	id           uint32 // the server's connection (thread) id, which KILL QUERY names
	// bulk: both sides agreed on MARIADB_CLIENT_STMT_BULK_OPERATIONS.
	bulk bool
	// mariadb: the server left CLIENT_MYSQL unset, as MariaDB does; it
	// reads statement id 0xffffffff as the last statement prepared.
	mariadb bool
}

// GetConnectionID is the server's id of this connection.
func (u *upstream) GetConnectionID() uint32 { return u.id }

// Close closes the socket without a goodbye.
func (u *upstream) Close() error { return u.Conn.Close() }

// Execute runs one text query of the gateway's own (sql_mode, session
// settings, KILL QUERY) and reads its whole answer: an OK, an ERR
// (returned as *gomysql.MyError), or one small result set.
func (u *upstream) Execute(q string) (*gomysql.Result, error) {
	u.ResetSequence()
	if err := u.WritePacket(withHeader(append([]byte{comQuery}, q...))); err != nil {
		return nil, err
	}
	p, err := u.ReadPacket()
	switch {
	case err != nil:
		return nil, err
	case len(p) == 0:
		return nil, errors.New("the upstream sent an empty packet")
	case p[0] == 0x00:
		return &gomysql.Result{}, nil
	case isErr(p):
		return nil, serverError(p)
	}
	cur := &cursor{b: p}
	n, _ := cur.lenenc()
	if cur.bad || len(cur.b) != 0 || n == 0 || n > 64 {
		return nil, errors.New("the upstream's answer to the gateway's query is malformed")
	}
	rs := &gomysql.Resultset{Fields: make([]*gomysql.Field, n), FieldNames: map[string]int{}}
	for i := 0; ; i++ {
		if p, err = u.ReadPacket(); err != nil {
			return nil, err
		}
		if isEOF(p) {
			break
		}
		if i >= int(n) {
			return nil, errors.New("the upstream sent more columns than it announced")
		}
		rs.Fields[i] = &gomysql.Field{}
		if err := rs.Fields[i].Parse(p); err != nil {
			return nil, err
		}
		rs.FieldNames[string(rs.Fields[i].Name)] = i
	}
	for {
		if p, err = u.ReadPacket(); err != nil {
			return nil, err
		}
		switch {
		case isEOF(p):
			return &gomysql.Result{Resultset: rs}, nil
		case isErr(p):
			return nil, serverError(p)
		}
		row, err := gomysql.RowData(p).Parse(rs.Fields, false, nil)
		if err != nil {
			return nil, err
		}
		rs.RowDatas = append(rs.RowDatas, p)
		rs.Values = append(rs.Values, row)
	}
}

// serverError reads an ERR packet (protocol 4.1).
func serverError(p []byte) error {
	e := &gomysql.MyError{}
	if len(p) >= 3 {
		e.Code = binary.LittleEndian.Uint16(p[1:])
	}
	rest := p[min(len(p), 3):]
	if len(rest) >= 6 && rest[0] == '#' {
		e.State, rest = string(rest[1:6]), rest[6:]
	}
	e.Message = string(rest)
	return e
}

// upstreamBuffer is the read buffer of an upstream connection (go-mysql's
// client used the same): a packet that fits is read in place.
const upstreamBuffer = 64 << 10

// dialUpstream connects and logs in to res. clientCaps are the client's
// capabilities, of which those that change what the server does for the
// client are asked for upstream too. ctx bounds the dial and the login.
func dialUpstream(ctx context.Context, res *config.Resource, db string, clientCaps uint32) (*upstream, error) {
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
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", res.Address)
	if err != nil {
		return nil, err
	}
	// The deadline bounds the login too: an upstream that accepts and then
	// hangs cannot hold the session's start (or a grant-end KILL) forever.
	// It stays on the connection, so that the caller's first queries (the
	// session's sql_mode check, a short login's catalog reads) are bounded
	// too; a caller that keeps the connection clears it (connectUpstream).
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	l := &login{nc: nc, res: res, tls: tlsConf, pinned: pinned}
	up, err := l.run(ctx, db, clientCaps)
	if err != nil {
		nc.Close()
		if l.refused != "" {
			return nil, fmt.Errorf("resource %q: %s", res.Name, l.refused)
		}
		return nil, err
	}
	return up, nil
}

// maxLoginPacket bounds one server packet during the login: a handshake,
// an auth switch, an RSA key or an error are a few hundred bytes. A longer
// one is refused rather than allocated.
const maxLoginPacket = 16 << 10

// login is one connection phase, as the client, from the server's
// greeting to its OK.
type login struct {
	nc     net.Conn // the socket, then TLS on it
	res    *config.Resource
	tls    *tls.Config
	pinned []byte // PEM of the pinned RSA key (caching_sha2 without TLS), or nil
	caps   uint32 // the server's capabilities, once greeted
	seq    uint8
	// refused says why the gateway stopped the login (for the log); the
	// server's own refusals come back as errors.
	refused string
}

// greeting is what the server's HandshakeV10 says.
type greeting struct {
	connID uint32
	caps   uint32
	ext    uint32 // MariaDB's extended capabilities; 0 when CLIENT_MYSQL is set
	salt   []byte
	plugin string
}

func (l *login) run(ctx context.Context, db string, clientCaps uint32) (*upstream, error) {
	p, err := l.read()
	if err != nil {
		return nil, err
	}
	if isErr(p) {
		return nil, serverError(p)
	}
	g, err := parseGreeting(p)
	if err != nil {
		return nil, l.refuse(err.Error())
	}
	l.caps = g.caps
	if l.tls == nil {
		if why := plaintextPluginRefusal(g.plugin, l.pinned != nil, "its initial handshake"); why != "" {
			return nil, l.refuse(why)
		}
	}
	auth, err := l.authData(g.plugin, g.salt)
	if err != nil {
		return nil, err
	}
	head, rest := buildHandshakeResponse(g, l.res.Username, db, clientCaps, l.tls != nil, auth)
	if l.tls != nil {
		if g.caps&capSSL == 0 {
			return nil, l.refuse("the upstream does not offer TLS, which its tls.mode requires")
		}
		if err := l.write(head); err != nil { // the SSLRequest
			return nil, err
		}
		tc := tls.Client(l.nc, l.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		l.nc = tc
	}
	if err := l.write(append(head, rest...)); err != nil {
		return nil, err
	}
	if err := l.authenticate(g); err != nil {
		return nil, err
	}
	noMySQL := g.caps&capLongPassword == 0
	return &upstream{Conn: &packet.Conn{Conn: l.nc}, br: bufio.NewReaderSize(l.nc, upstreamBuffer), id: g.connID,
		bulk: noMySQL && g.ext&extStmtBulkOperations != 0, mariadb: noMySQL}, nil
}

// parseGreeting reads a HandshakeV10. Every length is checked: the bytes
// come from whoever answers on the upstream's address.
func parseGreeting(p []byte) (*greeting, error) {
	malformed := errors.New("the upstream's initial handshake is malformed")
	cur := &cursor{b: p}
	if v := cur.u8(); v != 10 {
		return nil, fmt.Errorf("the upstream speaks protocol version %d, not 10 (is it a MySQL server? X Protocol's port is not)", v)
	}
	cur.nulString() // server version
	g := &greeting{connID: cur.u32()}
	g.salt = append(g.salt, cur.bytes(8)...)
	cur.u8() // filler
	g.caps = uint32(cur.u16())
	if cur.bad {
		return nil, malformed
	}
	g.plugin = pluginNative
	if len(cur.b) > 0 {
		cur.u8()  // character set
		cur.u16() // status
		g.caps |= uint32(cur.u16()) << 16
		saltLen := int(cur.u8())
		cur.bytes(6)
		if ext := cur.u32(); g.caps&capLongPassword == 0 {
			g.ext = ext
		}
		if g.caps&capSecureConn != 0 {
			// max(13, length - 8) bytes, the last of them a NUL.
			part := cur.bytes(max(13, saltLen-8))
			if len(part) > 0 {
				g.salt = append(g.salt, part[:len(part)-1]...)
			}
		}
		if g.caps&capPluginAuth != 0 {
			if name := cur.nulString(); len(name) > 0 {
				g.plugin = string(name)
			}
		}
		if cur.bad {
			return nil, malformed
		}
	}
	if g.caps&capProtocol41 == 0 {
		return nil, errors.New("the upstream does not speak protocol 4.1")
	}
	return g, nil
}

// buildHandshakeResponse builds HandshakeResponse41 in two parts: head is the
// fixed 32 bytes (alone, it is the SSLRequest), rest what follows them.
func buildHandshakeResponse(g *greeting, user, db string, clientCaps uint32, withTLS bool, auth []byte) (head, rest []byte) {
	caps := uint32(capProtocol41 | capSecureConn | capTransactions | capPluginAuth | capMultiResults | capPSMultiResults)
	// The client's capabilities that change what the server does for it
	// are asked for as the client set them; the gateway's own queries
	// need the multi-results ones.
	caps |= clientCaps & (capFoundRows | capMultiStatements | capLocalFiles)
	caps |= g.caps & (capLongFlag | capConnectAttrs | capPluginAuthLenc)
	var ext uint32
	if g.caps&capLongPassword == 0 && g.ext&extStmtBulkOperations != 0 {
		// MariaDB: without CLIENT_MYSQL, the extended capabilities count.
		ext = extStmtBulkOperations
	} else {
		caps |= capLongPassword
	}
	if db != "" {
		caps |= capConnectWithDB
	}
	if withTLS {
		caps |= capSSL
	}
	head = binary.LittleEndian.AppendUint32(nil, caps)
	head = binary.LittleEndian.AppendUint32(head, 0) // max packet: the server's
	head = append(head, utf8mb4GeneralCI)
	head = append(head, make([]byte, 19)...)
	head = binary.LittleEndian.AppendUint32(head, ext)

	rest = append([]byte(user), 0)
	if caps&capPluginAuthLenc != 0 {
		rest = appendLenenc(rest, uint64(len(auth)))
	} else {
		rest = append(rest, byte(len(auth))) // scrambles and short passwords only: see authData
	}
	rest = append(rest, auth...)
	if db != "" {
		rest = append(append(rest, db...), 0)
	}
	rest = append(append(rest, g.plugin...), 0)
	if caps&capConnectAttrs != 0 {
		var attrs []byte
		for _, kv := range [][2]string{{"_client_name", "countersign"}, {"program_name", "countersign"}} {
			attrs = appendLenenc(attrs, uint64(len(kv[0])))
			attrs = append(attrs, kv[0]...)
			attrs = appendLenenc(attrs, uint64(len(kv[1])))
			attrs = append(attrs, kv[1]...)
		}
		rest = appendLenenc(rest, uint64(len(attrs)))
		rest = append(rest, attrs...)
	}
	return head, rest
}

// authData answers plugin's challenge. Plugins that send the password
// itself (sha256_password and mysql_clear_password) are reached only over
// TLS: without it plaintextPluginRefusal stopped the login before.
func (l *login) authData(plugin string, scramble []byte) ([]byte, error) {
	pw := l.res.Password
	switch plugin {
	case gomysql.AUTH_NATIVE_PASSWORD:
		if len(scramble) < 20 {
			return nil, l.refuse("the upstream's mysql_native_password scramble is too short")
		}
		return gomysql.CalcPassword(scramble[:20], []byte(pw)), nil
	case gomysql.AUTH_CACHING_SHA2_PASSWORD:
		if len(scramble) < 20 {
			// MySQL's scramble is 20 bytes; a shorter one is an
			// impostor's choice of nonce.
			return nil, l.refuse("the upstream's caching_sha2_password scramble is too short")
		}
		return gomysql.CalcCachingSha2Password(scramble[:20], pw), nil
	case gomysql.AUTH_MARIADB_ED25519:
		if len(scramble) != 32 {
			return nil, l.refuse("the upstream's client_ed25519 challenge is not 32 bytes")
		}
		return gomysql.CalcEd25519Password(scramble, pw)
	case gomysql.AUTH_SHA256_PASSWORD, gomysql.AUTH_CLEAR_PASSWORD:
		if l.tls == nil {
			return nil, l.refuse("the upstream asked for the password in the clear without TLS")
		}
		if len(pw)+1 >= 251 && l.caps&capPluginAuthLenc == 0 {
			// A one-byte length is all the response has without it.
			return nil, l.refuse("the resource's password is too long for " + plugin + " on this server")
		}
		return append([]byte(pw), 0), nil
	}
	return nil, l.refuse(fmt.Sprintf("the upstream asked for the %s auth plugin, which countersign does not support; "+
		"give the account mysql_native_password, ed25519 or caching_sha2_password", pluginName(plugin)))
}

// authenticate follows the server's answers to the handshake response
// until its OK: at most one auth switch, and caching_sha2_password's fast
// or full authentication.
func (l *login) authenticate(g *greeting) error {
	plugin, scramble, switched, moreData := g.plugin, g.salt, false, false
	for {
		p, err := l.read()
		if err != nil {
			return err
		}
		switch {
		case len(p) == 0:
			return l.refuse("the upstream sent an empty packet during the login")
		case p[0] == 0x00:
			return nil
		case isErr(p):
			return serverError(p)
		case p[0] == 0xfe:
			if switched {
				return l.refuse("the upstream switched the auth plugin twice")
			}
			switched = true
			if plugin, scramble, err = l.authSwitch(p); err != nil {
				return err
			}
			auth, err := l.authData(plugin, scramble)
			if err != nil {
				return err
			}
			if err := l.write(auth); err != nil {
				return err
			}
		case p[0] == 0x01 && moreData:
			// caching_sha2_password says fast or full once; a second
			// answer would only keep the login (or a password) going.
			return l.refuse("the upstream sent caching_sha2_password's auth-more-data twice")
		case p[0] == 0x01 && plugin == gomysql.AUTH_CACHING_SHA2_PASSWORD && len(p) == 2 && p[1] == 3:
			moreData = true
			// Fast authentication succeeded: the OK follows.
		case p[0] == 0x01 && plugin == gomysql.AUTH_CACHING_SHA2_PASSWORD && len(p) == 2 && p[1] == 4:
			moreData = true
			if err := l.fullAuth(scramble); err != nil {
				return err
			}
		default:
			return l.refuse(fmt.Sprintf("the upstream sent an unexpected packet (0x%02x) during the %s login", p[0], plugin))
		}
	}
}

// authSwitch reads an AuthSwitchRequest and checks the plugin it names.
func (l *login) authSwitch(p []byte) (string, []byte, error) {
	plugin := "mysql_old_password" // the old request: a lone 0xfe
	var data []byte
	if len(p) > 1 {
		end := bytes.IndexByte(p, 0)
		if end < 0 {
			return "", nil, l.refuse("the upstream's auth switch request is malformed")
		}
		plugin, data = string(p[1:end]), p[end+1:]
		if len(data) == 21 && data[20] == 0 {
			data = data[:20] // a 20-byte scramble and its NUL
		}
	}
	if l.tls == nil {
		if why := plaintextPluginRefusal(plugin, l.pinned != nil, "an auth switch"); why != "" {
			return "", nil, l.refuse(why)
		}
	}
	return plugin, append([]byte(nil), data...), nil
}

// pluginName is a plugin name the upstream sent, fit for the log: at most
// 64 printable ASCII characters (the name is the server's, or whoever
// answers on its address, and a login packet may be 16 KiB).
func pluginName(name string) string {
	b := []byte(name)
	if len(b) > 64 {
		b = append(b[:61], "..."...)
	}
	for i, ch := range b {
		if ch < 0x20 || ch > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// fullAuth answers caching_sha2_password's request for the password: over
// TLS as it is; without TLS encrypted to the pinned RSA key, never to a
// key fetched in the clear, which whoever is on the path could hand out
// (MySQL's --server-public-key-path does the same; the server accepts the
// encrypted password without having been asked for its key).
func (l *login) fullAuth(scramble []byte) error {
	if l.tls != nil {
		return l.write(append([]byte(l.res.Password), 0))
	}
	if l.pinned == nil {
		return l.refuse("the upstream asked for caching_sha2_password full authentication without TLS; " +
			"the gateway will not fetch its RSA key in the clear: set tls.mode: require or verify-full for this resource")
	}
	block, _ := pem.Decode(l.pinned)
	if block == nil {
		return l.refuse("tls.server_public_key_file holds no PEM block")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	rsaKey, ok := key.(*rsa.PublicKey)
	if err != nil || !ok {
		return l.refuse("tls.server_public_key_file holds no RSA public key")
	}
	enc, err := gomysql.EncryptPassword(l.res.Password, scramble, rsaKey)
	if err != nil {
		return err
	}
	return l.write(enc)
}

// refuse records why the gateway stopped the login and returns it as the
// error.
func (l *login) refuse(why string) error {
	if l.refused == "" {
		l.refused = why
	}
	return errors.New("countersign refused the upstream's login: " + why)
}

// read reads one login packet, checking its size and sequence number.
func (l *login) read() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(l.nc, h[:]); err != nil {
		return nil, err
	}
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if n > maxLoginPacket {
		return nil, l.refuse(fmt.Sprintf("the upstream sent a %d-byte packet during the login, far more than a login needs", n))
	}
	if h[3] != l.seq {
		return nil, l.refuse(fmt.Sprintf("the upstream numbered a login packet %d, not %d", h[3], l.seq))
	}
	l.seq++
	p := make([]byte, n)
	if _, err := io.ReadFull(l.nc, p); err != nil {
		return nil, err
	}
	return p, nil
}

// write sends one login packet.
func (l *login) write(payload []byte) error {
	b := append([]byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), l.seq}, payload...)
	l.seq++
	_, err := l.nc.Write(b)
	return err
}
