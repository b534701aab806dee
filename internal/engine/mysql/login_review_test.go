package mysql

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	gomy "github.com/go-sql-driver/mysql"
)

// loginPassword is the resource's password in the login attack tests: no
// packet a plaintext impostor gets may hold it.
const loginPassword = "upstream-secret-Zq8"

// step is one move of a scripted upstream: the attacker is the server.
type step func(s *scripted) bool

// scripted is an upstream that plays a script, then reads whatever the
// client sends until it closes. got is every packet the client sent.
type scripted struct {
	nc  net.Conn
	got [][]byte
}

// send writes one packet with sequence number seq.
func send2(seq byte, payload []byte) step {
	return func(s *scripted) bool {
		h := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
		_, err := s.nc.Write(append(h, payload...))
		return err == nil
	}
}

// raw writes bytes as they are (a header that lies, a cut packet).
func raw(b []byte) step {
	return func(s *scripted) bool { _, err := s.nc.Write(b); return err == nil }
}

// recv reads one packet of the client's.
func recv(s *scripted) bool {
	var h [4]byte
	if _, err := io.ReadFull(s.nc, h[:]); err != nil {
		return false
	}
	p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	if _, err := io.ReadFull(s.nc, p); err != nil {
		return false
	}
	s.got = append(s.got, p)
	return true
}

// startTLS reads the SSLRequest and answers TLS with the test
// certificate (127.0.0.1).
func startTLS(s *scripted) bool {
	if !recv(s) {
		return false
	}
	tc := tls.Server(s.nc, serverTLS)
	if tc.Handshake() != nil {
		return false
	}
	s.nc = tc
	return true
}

// hangUp closes the connection.
func hangUp(s *scripted) bool { return false }

func startScripted(t *testing.T, steps []step) (addr string, sent <-chan [][]byte) {
	t.Helper()
	ch := make(chan [][]byte, 1)
	return serveUpstream(t, func(nc net.Conn) {
		// Only a bound on a broken test: every case ends with the
		// client closing the connection.
		_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
		s := &scripted{nc: nc}
		defer func() { ch <- s.got }()
		for _, st := range steps {
			if !st(s) {
				return
			}
		}
		for recv(s) {
		}
	}), ch
}

// greet is a HandshakeV10 with these capabilities; ext goes in the last
// four reserved bytes (MariaDB's extended capabilities).
func greet(plugin string, caps, ext uint32) []byte {
	hs := []byte{10}
	hs = append(hs, "10.11.6-MariaDB\x00"...)
	hs = binary.LittleEndian.AppendUint32(hs, 7)
	hs = append(hs, "abcdefgh"...)
	hs = append(hs, 0)
	hs = binary.LittleEndian.AppendUint16(hs, uint16(caps))
	hs = append(hs, 45)
	hs = binary.LittleEndian.AppendUint16(hs, 2)
	hs = binary.LittleEndian.AppendUint16(hs, uint16(caps>>16))
	hs = append(hs, 21)
	hs = append(hs, make([]byte, 6)...)
	hs = binary.LittleEndian.AppendUint32(hs, ext)
	hs = append(hs, "ijklmnopqrst\x00"...)
	return append(hs, plugin+"\x00"...)
}

const greetCaps = capProtocol41 | capSecureConn | capPluginAuth | capConnectWithDB | capPluginAuthLenc

func hello(plugin string) step { return send2(0, greet(plugin, greetCaps, 0)) }
func helloTLS(plugin string) step {
	return send2(0, greet(plugin, greetCaps|capSSL, 0))
}

// authSwitch is an AuthSwitchRequest to plugin with data.
func authSwitch(plugin string, data string) []byte {
	return append(append([]byte{0xfe}, plugin+"\x00"...), data...)
}

var (
	loginOK   = []byte{0, 0, 0, 2, 0, 0, 0}
	salt20    = "ABCDEFGHIJKLMNOPQRST\x00"
	fastOK    = []byte{1, 3}
	fullAuth  = []byte{1, 4}
	native    = "mysql_native_password"
	sha2      = "caching_sha2_password"
	respCheck = func(want func(caps, ext uint32) string) func(t *testing.T, got [][]byte, up *upstream) {
		return func(t *testing.T, got [][]byte, up *upstream) {
			t.Helper()
			if len(got) == 0 || len(got[0]) < 32 {
				t.Fatalf("no handshake response: %q", got)
			}
			if why := want(binary.LittleEndian.Uint32(got[0]), binary.LittleEndian.Uint32(got[0][28:])); why != "" {
				t.Fatal(why)
			}
		}
	}
)

// TestLoginImpostor: whoever answers on the upstream's address (the
// server, or a man in the middle of a plaintext or unverified login)
// plays every trick of the connection phase. Each trick fails the login
// with an error that says why (what the gateway logs), the login never
// panics, and a plaintext impostor never gets the password. answered is
// how many packets the gateway sent before it stopped: a refusal sends
// nothing in answer to the packet it refuses.
func TestLoginImpostor(t *testing.T) {
	_, pub := rsaServer(t)
	dir := t.TempDir()
	pinned := filepath.Join(dir, "pinned.pem")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(pinned, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverTLS.Certificates[0].Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	longName := strings.Repeat("x\n", 600)
	tests := []struct {
		name     string
		tls      config.UpstreamTLS
		steps    []step
		want     string // in the error; "" when the login succeeds
		answered int
		check    func(t *testing.T, got [][]byte, up *upstream)
	}{
		// Auth switches.
		{"two auth switches", config.UpstreamTLS{}, []step{hello(native), recv, send2(2, authSwitch(native, salt20)), recv, send2(4, authSwitch(native, salt20))},
			"switched the auth plugin twice", 2, nil},
		{"switch to client_ed25519 with a short challenge", config.UpstreamTLS{}, []step{hello(native), recv, send2(2, authSwitch("client_ed25519", salt20))},
			"not 32 bytes", 1, nil},
		{"switch to caching_sha2 with a chosen short nonce", config.UpstreamTLS{}, []step{hello(native), recv, send2(2, authSwitch(sha2, "abc"))},
			"scramble is too short", 1, nil},
		{"switch to a plugin with a long, multi-line name", config.UpstreamTLS{}, []step{hello(native), recv, send2(2, authSwitch(longName, salt20))},
			"x?x?x?", 1, nil},
		{"TLS (require), switch to an unknown plugin", config.UpstreamTLS{Mode: "require"}, []step{helloTLS(native), startTLS, recv, send2(3, authSwitch("dialog", salt20))},
			"dialog auth plugin, which countersign does not support", 2, nil},

		// caching_sha2_password's auth-more-data.
		{"caching_sha2 fast auth", config.UpstreamTLS{}, []step{hello(sha2), recv, send2(2, fastOK), send2(3, loginOK)}, "", 1, nil},
		{"caching_sha2 fast auth twice", config.UpstreamTLS{}, []step{hello(sha2), recv, send2(2, fastOK), send2(3, fastOK)},
			"auth-more-data twice", 1, nil},
		{"caching_sha2 fast auth, then full", config.UpstreamTLS{}, []step{hello(sha2), recv, send2(2, fastOK), send2(3, fullAuth)},
			"auth-more-data twice", 1, nil},
		{"caching_sha2 full auth in plaintext, nothing pinned", config.UpstreamTLS{}, []step{hello(sha2), recv, send2(2, fullAuth)},
			"full authentication without TLS", 1, nil},
		{"switch to caching_sha2, then full auth in plaintext", config.UpstreamTLS{}, []step{hello(native), recv, send2(2, authSwitch(sha2, salt20)), recv, send2(4, fullAuth)},
			"full authentication without TLS", 2, nil},
		{"caching_sha2 public key sent unasked", config.UpstreamTLS{}, []step{hello(sha2), recv, send2(2, append([]byte{1}, pub...))},
			"unexpected packet (0x01)", 1, nil},
		{"pinned key, full auth twice", config.UpstreamTLS{ServerPublicKeyFile: pinned}, []step{hello(sha2), recv, send2(2, fullAuth), recv, send2(4, fullAuth)},
			"auth-more-data twice", 2, nil},
		{"auth-more-data to mysql_native_password", config.UpstreamTLS{}, []step{hello(native), recv, send2(2, fullAuth)},
			"unexpected packet (0x01)", 1, nil},

		// Framing.
		{"OK instead of a greeting", config.UpstreamTLS{}, []step{send2(0, loginOK)}, "protocol version 0", 0, nil},
		{"ERR instead of a greeting", config.UpstreamTLS{}, []step{send2(0, append([]byte{0xff, 0x10, 0x04}, "#HY000Too many connections"...))},
			"Too many connections", 0, nil},
		{"OK sent before the handshake response", config.UpstreamTLS{}, []step{hello(native), send2(1, loginOK), recv},
			"numbered a login packet 1, not 2", 1, nil},
		{"OK with a sequence number far ahead", config.UpstreamTLS{}, []step{hello(native), recv, send2(9, loginOK)},
			"numbered a login packet 9, not 2", 1, nil},
		{"oversized greeting", config.UpstreamTLS{}, []step{raw([]byte{0, 0, 0x10, 0})}, "1048576-byte packet during the login", 0, nil},
		{"oversized answer", config.UpstreamTLS{}, []step{hello(native), recv, raw([]byte{0xff, 0xff, 0xff, 2})}, "16777215-byte packet", 1, nil},
		{"greeting cut short", config.UpstreamTLS{}, []step{raw(append([]byte{100, 0, 0, 0}, greet(native, greetCaps, 0)[:20]...)), hangUp}, "EOF", 0, nil},
		{"greeting without its salt", config.UpstreamTLS{}, []step{send2(0, greet(native, greetCaps, 0)[:20])}, "initial handshake is malformed", 0, nil},
		{"empty packet", config.UpstreamTLS{}, []step{hello(native), recv, send2(2, nil)}, "empty packet", 1, nil},

		// TLS modes.
		{"require, TLS not offered", config.UpstreamTLS{Mode: "require"}, []step{hello(native)}, "does not offer TLS", 0, nil},
		{"verify-full, another host name", config.UpstreamTLS{Mode: "verify-full", CAFile: caFile, ServerName: "db.example.com"},
			[]step{helloTLS(native), startTLS}, "db.example.com", 1, nil},
		{"verify-full, unknown CA", config.UpstreamTLS{Mode: "verify-full"}, []step{helloTLS(native), startTLS}, "certificate", 1, nil},
		{"verify-full", config.UpstreamTLS{Mode: "verify-full", CAFile: caFile}, []step{helloTLS(native), startTLS, recv, send2(3, loginOK)}, "", 2, nil},
		{"plaintext greeting answered after the SSLRequest", config.UpstreamTLS{Mode: "require"}, []step{helloTLS(native), recv, send2(2, loginOK)},
			"", 1, nil}, // want set below: any TLS failure

		// What the greeting claims.
		{"greeting claims every capability", config.UpstreamTLS{}, []step{send2(0, greet(native, 0xffffffff&^capLongPassword&^capSSL, 0xffffffff)), recv, send2(2, loginOK)},
			"", 1, respCheck(func(caps, ext uint32) string {
				if bad := caps & (capCompress | capDeprecateEOF | capSessionTrack | capQueryAttributes | capIgnoreSpace | capSSL | capLocalFiles | capMultiStatements); bad != 0 {
					return fmt.Sprintf("the response asks for capabilities the relay does not speak: %#x", bad)
				}
				if ext != extStmtBulkOperations {
					return "the response asks for extended capabilities other than bulk"
				}
				return ""
			})},
		{"CLIENT_MYSQL server claiming bulk", config.UpstreamTLS{}, []step{send2(0, greet(native, greetCaps|capLongPassword, 0xffffffff)), recv, send2(2, loginOK)},
			"", 1, func(t *testing.T, got [][]byte, up *upstream) {
				if up.bulk || up.mariadb {
					t.Fatalf("bulk %v, mariadb %v from a server that set CLIENT_MYSQL", up.bulk, up.mariadb)
				}
				respCheck(func(caps, ext uint32) string {
					if caps&capLongPassword == 0 || ext != 0 {
						return "extended capabilities asked of a server that set CLIENT_MYSQL"
					}
					return ""
				})(t, got, up)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, sent := startScripted(t, tc.steps)
			res := &config.Resource{Name: "my-impostor", Type: "mysql", Address: addr, Username: "app", Password: loginPassword, UpstreamTLS: tc.tls}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			up, err := dialUpstream(ctx, res, "", 0)
			if tc.name == "plaintext greeting answered after the SSLRequest" {
				// The server skipped TLS: its OK is no TLS record.
				if err == nil {
					t.Fatal("login without the TLS handshake succeeded")
				}
				tc.want = err.Error()
			}
			if err != nil && strings.Contains(err.Error(), loginPassword) {
				t.Fatalf("the error holds the password: %v", err)
			}
			if tc.want == "" && err != nil {
				t.Fatalf("login: %v; want it to succeed", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("login: %v; want refused with %q", err, tc.want)
			}
			if err != nil && len(err.Error()) > 600 {
				t.Fatalf("the error is %d bytes long", len(err.Error()))
			}
			if up != nil {
				up.Close() // the impostor reads until the gateway hangs up
			}
			got := <-sent
			if tc.tls.Mode == "" {
				for _, p := range got {
					if bytes.Contains(p, []byte(loginPassword)) {
						t.Fatalf("the impostor got the password: %q", p)
					}
				}
			}
			if len(got) != tc.answered {
				t.Fatalf("the gateway sent %d packets, want %d: %q", len(got), tc.answered, got)
			}
			if tc.check != nil {
				tc.check(t, got, up)
			}
		})
	}
}

// TestLoginSilentAfterOK: an upstream that logs the gateway in and then
// never answers its first query (the sql_mode check) cannot hold the
// session's start: the resource's connect_timeout bounds it, and the
// client gets an error.
func TestLoginSilentAfterOK(t *testing.T) {
	ev := newEnv(t, nil)
	addr, _ := startScripted(t, []step{hello(native), recv, send2(2, loginOK)})
	ev.res["my-silent"] = &config.Resource{Name: "my-silent", Type: "mysql", Address: addr, Username: "app", Password: loginPassword,
		ConnectTimeout: time.Second}
	db, err := sql.Open("mysql", ev.dsn("my-silent", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Ping()
	var me *gomy.MySQLError
	if !errors.As(err, &me) || !strings.Contains(me.Message, "could not read the upstream's sql_mode") {
		t.Fatalf("login to an upstream silent after its OK: %v; want the sql_mode check to fail", err)
	}
}
