package postgres

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/sqlkind"
	"github.com/jackc/pgx/v5/pgproto3"
)

// startup runs the client's startup phase up to the first ReadyForQuery.
// It reports whether the session is ready for operations.
func (c *conn) startup() bool {
	_ = c.nc.SetDeadline(time.Now().Add(c.e.o.Limits.StartupTimeout))
	c.rd = &clientReader{conn: c.nc, cap: c.e.o.Limits.MaxMessageBytes}
	c.be = pgproto3.NewBackend(c.rd, c.nc)
	sm, ok := c.negotiate()
	if !ok {
		return false
	}
	if !c.checkStartup(sm) {
		return false
	}
	if !c.authenticate() {
		return false
	}
	if !c.openSession() {
		return false
	}
	if !c.connectUpstream() {
		return false
	}
	if !c.greet() {
		return false
	}
	_ = c.nc.SetDeadline(time.Time{})
	c.rd.idle = c.e.o.Limits.IdleTimeout
	c.rd.busy = c.q.busy
	// Every message body from here on is bounded: without the limit a
	// client could make the gateway allocate whatever length it claims.
	c.be.SetMaxBodyLen(c.e.o.Limits.MaxMessageBytes)
	return true
}

// negotiate answers SSLRequest, GSSENCRequest and CancelRequest until the
// StartupMessage arrives.
func (c *conn) negotiate() (*pgproto3.StartupMessage, bool) {
	for {
		msg, err := c.be.ReceiveStartupMessage()
		if err != nil {
			c.e.log.Debug("postgres startup ended", "client", c.nc.RemoteAddr().String(), "error", err)
			if !errors.Is(err, net.ErrClosed) && !isEOF(err) {
				c.out.send(fatal(codeProtocolViolation, "invalid startup packet: "+err.Error()))
			}
			return nil, false
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if !c.startTLS() {
				return nil, false
			}
		case *pgproto3.GSSEncRequest:
			if c.out.write([]byte{'N'}) != nil {
				return nil, false
			}
		case *pgproto3.CancelRequest:
			c.e.routeCancel(m.ProcessID, m.SecretKey)
			return nil, false
		case *pgproto3.StartupMessage:
			return m, true
		default:
			c.out.send(fatal(codeProtocolViolation, fmt.Sprintf("unexpected startup message %T", msg)))
			return nil, false
		}
	}
}

// startTLS answers an SSLRequest: 'S' and a handshake with the gateway's
// certificate, or 'N' when there is none.
func (c *conn) startTLS() bool {
	if c.isTLS {
		c.out.send(fatal(codeProtocolViolation, "SSLRequest received twice"))
		return false
	}
	if c.e.o.TLS == nil {
		return c.out.write([]byte{'N'}) == nil
	}
	if c.out.write([]byte{'S'}) != nil {
		return false
	}
	tc := tls.Server(c.nc, c.e.o.TLS)
	if err := tc.Handshake(); err != nil {
		c.e.log.Info("postgres client TLS handshake failed", "client", c.nc.RemoteAddr().String(), "error", err)
		return false
	}
	// A new reader: bytes a client sent in plaintext behind its SSLRequest
	// are dropped, never read as if they had come through TLS.
	c.cc, c.isTLS = tc, true
	c.rd = &clientReader{conn: tc, cap: c.e.o.Limits.MaxMessageBytes}
	c.be = pgproto3.NewBackend(c.rd, tc)
	c.out.setConn(tc)
	return true
}

// allowedParams are the startup parameters passed upstream, by lower-case
// name: each is a setting whose effect the gateway understands.
var allowedParams = map[string]string{
	"application_name":   "application_name",
	"client_encoding":    "client_encoding",
	"datestyle":          "DateStyle",
	"timezone":           "TimeZone",
	"extra_float_digits": "extra_float_digits",
}

// checkStartup validates the startup parameters and finds the resource.
func (c *conn) checkStartup(sm *pgproto3.StartupMessage) bool {
	params, user, db, unknown, err := startupParams(sm.Parameters)
	if err != nil {
		c.out.send(fatal(err.code, err.msg))
		return false
	}
	if sm.ProtocolVersion != pgproto3.ProtocolVersion30 || len(unknown) > 0 {
		// Only 3.0 is spoken; newer clients fall back when told so.
		c.be.Send(&pgproto3.NegotiateProtocolVersion{NewestMinorProtocol: 0, UnrecognizedOptions: unknown})
	}
	if db == "" {
		db = user
	}
	res, ok := c.e.o.Resource(db)
	if !ok || res.Type != "postgres" {
		c.out.send(fatal(codeInvalidCatalogName, fmt.Sprintf(
			"resource %q is not a PostgreSQL resource of this gateway; name a configured resource as the database (dbname=RESOURCE), or run 'countersign connect RESOURCE'", db)))
		return false
	}
	c.res, c.params = res, params
	c.sess = &guard.Session{Resource: res.Name, Dialect: sqlkind.Postgres,
		ClientAddr: c.nc.RemoteAddr().String(), ClientProgram: params["application_name"],
		Interrupt: c.interrupt}
	c.userName = user
	return true
}

type startupErr struct{ code, msg string }

// startupParams splits the startup parameters into those passed upstream,
// user and database, and protocol options (_pq_.*) it does not know; any
// other parameter refuses the connection.
func startupParams(in map[string]string) (params map[string]string, user, db string, unknown []string, err *startupErr) {
	params = map[string]string{}
	for k, v := range in {
		lk := strings.ToLower(k)
		switch {
		case lk == "user":
			user = v
		case lk == "database":
			db = v
		case strings.HasPrefix(k, "_pq_."):
			unknown = append(unknown, k)
		case lk == "replication":
			return nil, "", "", nil, &startupErr{codeFeatureNotSupported,
				"replication connections are not allowed through countersign; connect to the upstream directly for replication"}
		case lk == "client_encoding":
			if !isUTF8(v) {
				return nil, "", "", nil, &startupErr{codeFeatureNotSupported, fmt.Sprintf(
					"client_encoding %q is not allowed: countersign reads statements as UTF8; set client_encoding=UTF8 (PGCLIENTENCODING=UTF8)", v)}
			}
			params["client_encoding"] = "UTF8"
		case allowedParams[lk] != "":
			params[allowedParams[lk]] = v
		case lk == "options":
			return nil, "", "", nil, &startupErr{codeFeatureNotSupported,
				"the startup parameter \"options\" is not allowed through countersign: session settings given with -c change what statements do before the gateway sees them; remove PGOPTIONS/options and use SET after connecting"}
		default:
			return nil, "", "", nil, &startupErr{codeFeatureNotSupported, fmt.Sprintf(
				"the startup parameter %q is not allowed through countersign; only application_name, client_encoding, DateStyle, TimeZone and extra_float_digits may be set at connect time", k)}
		}
	}
	return params, user, db, unknown, nil
}

func isUTF8(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "utf8", "utf-8", "unicode":
		return true
	}
	return false
}

// authenticate asks for the password (a countersign token) once the
// connection is safe to send it on, and checks it.
func (c *conn) authenticate() bool {
	if !c.isTLS && !(c.e.o.AllowPlaintextLoopback && isLoopback(c.nc.RemoteAddr())) {
		// Refuse before asking, so the client never sends its token in the clear.
		c.out.send(fatal(codeInvalidAuthorization,
			"connect with sslmode=require or stronger; countersign does not accept tokens in plaintext"))
		return false
	}
	c.be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if c.be.Flush() != nil {
		return false
	}
	if err := c.be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return false
	}
	c.be.SetMaxBodyLen(maxPasswordLen)
	msg, err := c.be.Receive()
	if err != nil {
		return false
	}
	pm, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		c.out.send(fatal(codeProtocolViolation, fmt.Sprintf("expected a password message, got %T", msg)))
		return false
	}
	secret := strings.Clone(pm.Password)
	ctx, cancel := context.WithTimeout(c.ctx, c.e.o.Limits.StartupTimeout)
	defer cancel()
	tok, aerr := c.e.o.Auth.AuthenticateResource(ctx, secret, c.res.Name)
	if aerr != nil {
		c.e.log.Info("postgres client authentication failed", "client", c.sess.ClientAddr, "resource", c.res.Name, "error", aerr)
		c.out.send(fatal(codeInvalidPassword, aerr.Error()))
		return false
	}
	c.sess.Identity = tok.Identity
	c.actor = tok.Identity.Key()
	return true
}

// maxPasswordLen bounds the password message: tokens are short, and the
// client is not yet authenticated.
const maxPasswordLen = 4096

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// openSession asks the guard and records session.open durably.
func (c *conn) openSession() bool {
	id, err := newSessionID()
	if err != nil {
		c.out.send(fatal(codeInternalError, "countersign could not make a session id; try again"))
		return false
	}
	c.id, c.sess.ID = id, id
	ctx, cancel := context.WithTimeout(c.ctx, c.e.o.Limits.StartupTimeout)
	defer cancel()
	if v := c.e.o.Guard.Connect(ctx, c.sess); v.Decision != guard.Allow {
		msg := v.Message
		if msg == "" {
			msg = fmt.Sprintf("you may not connect to resource %q; ask an admin to add one of your groups to its policy.access", c.res.Name)
		}
		c.out.send(fatal(codeInsufficientPriv, msg))
		return false
	}
	if err := c.e.recordOpen(ctx, c); err != nil {
		c.e.log.Error("recording session.open failed", "session", c.id, "error", err)
		c.out.send(fatal(codeSystemError, "countersign could not record the session, so it was refused; try again, and tell an admin if it persists"))
		return false
	}
	c.opened = true
	return true
}

func newSessionID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "s-" + hex.EncodeToString(b[:]), nil
}

// greet tells the client it is in: AuthenticationOk, the upstream's
// ParameterStatus, the gateway's own BackendKeyData, ReadyForQuery.
func (c *conn) greet() bool {
	pid, secret, err := c.e.cancels.add(c)
	if err != nil {
		c.fail(codeInternalError, "countersign could not make a cancel key; try again")
		return false
	}
	c.pid = pid
	msgs := []pgproto3.BackendMessage{&pgproto3.AuthenticationOk{}}
	c.state.mu.Lock()
	for k, v := range c.state.params {
		msgs = append(msgs, &pgproto3.ParameterStatus{Name: k, Value: v})
	}
	c.state.mu.Unlock()
	msgs = append(msgs, &pgproto3.BackendKeyData{ProcessID: pid, SecretKey: secret},
		&pgproto3.ReadyForQuery{TxStatus: c.state.txStatus()})
	return c.out.send(msgs...) == nil
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
