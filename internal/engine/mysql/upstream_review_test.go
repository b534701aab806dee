package mysql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	gomy "github.com/go-sql-driver/mysql"
)

// impostor answers on the upstream's address as a man in the middle of a
// plaintext login would: a handshake naming plugin (raw replaces the whole
// handshake payload when set), then, after the client's handshake
// response, an AuthSwitchRequest to switchTo when it is set (switchRaw
// replaces that packet's payload), then OK. Everything the client sends
// after the handshake is kept, until it closes the connection.
type impostor struct {
	plugin    string
	raw       []byte
	switchTo  string
	switchRaw []byte
	sent      chan [][]byte
}

func (m *impostor) start(t *testing.T) string {
	t.Helper()
	m.sent = make(chan [][]byte, 4)
	return serveUpstream(t, m.serve)
}

func (m *impostor) serve(nc net.Conn) {
	// Only a bound on a broken test: every case ends with the client
	// closing the connection or logged in.
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	var got [][]byte
	defer func() { m.sent <- got }()
	write := func(seq byte, payload []byte) {
		h := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
		_, _ = nc.Write(append(h, payload...))
	}
	read := func() bool {
		var h [4]byte
		if _, err := io.ReadFull(nc, h[:]); err != nil {
			return false
		}
		p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
		if _, err := io.ReadFull(nc, p); err != nil {
			return false
		}
		got = append(got, p)
		return true
	}
	hs := m.raw
	if hs == nil {
		hs = impostorHandshake(m.plugin)
	}
	write(0, hs)
	if !read() { // the handshake response
		return
	}
	seq := byte(2)
	if m.switchTo != "" || m.switchRaw != nil {
		sw := m.switchRaw
		if sw == nil {
			sw = append(append([]byte{0xfe}, m.switchTo+"\x00"...), "abcdefghijklmnopqrst\x00"...)
		}
		write(2, sw)
		if !read() { // the answer to the switch
			return
		}
		seq = 4
	}
	write(seq, []byte{0, 0, 0, 2, 0, 0, 0}) // OK
	// Logged in: the client closes when the test is done with it.
	for read() {
	}
}

// impostorHandshake is a HandshakeV10 as a MySQL 8 server sends it.
func impostorHandshake(plugin string) []byte {
	caps := uint32(0x00000200 | 0x00008000 | 0x00080000 | 0x00000008 | 0x00200000)
	hs := []byte{10}
	hs = append(hs, "8.0.36\x00"...)
	hs = binary.LittleEndian.AppendUint32(hs, 7)
	hs = append(hs, "abcdefgh"...)
	hs = append(hs, 0)
	hs = binary.LittleEndian.AppendUint16(hs, uint16(caps))
	hs = append(hs, 45)
	hs = binary.LittleEndian.AppendUint16(hs, 2)
	hs = binary.LittleEndian.AppendUint16(hs, uint16(caps>>16))
	hs = append(hs, 21)
	hs = append(hs, make([]byte, 10)...)
	hs = append(hs, "ijklmnopqrst\x00"...)
	return append(hs, plugin+"\x00"...)
}

// TestReviewPlaintextAuthSwitch: over a plaintext upstream, whoever
// answers on the path (the attacker a pinned key is there for) picks the
// auth plugin, in the handshake or by an AuthSwitchRequest.
// mysql_clear_password would get the password as it is (go-mysql sends
// it), sha256_password the password or a key fetch, and, against a pinned
// caching_sha2 key, mysql_native_password a scramble and hash to crack
// offline. Each is refused before go-mysql answers it: the impostor gets
// nothing after the packet that names the plugin, and the gateway's log
// (dialUpstream's error) says what was asked for. A handshake whose
// plugin name has no end, which go-mysql would slice past (a panic), is
// refused too. The plugins a plaintext login may use still log in.
func TestReviewPlaintextAuthSwitch(t *testing.T) {
	const password = "upstream-secret-Zq8"
	pem := writePEMForReview(t)
	noEnd := impostorHandshake("caching_sha2_password")
	noEnd = noEnd[:len(noEnd)-1]
	tests := []struct {
		name     string
		pinned   bool
		m        impostor
		want     string // in the error; "" when the login succeeds
		answered int    // packets the client sends before it stops
	}{
		{"pinned, switch to clear", true, impostor{plugin: "caching_sha2_password", switchTo: "mysql_clear_password"}, "mysql_clear_password auth plugin in an auth switch", 1},
		{"pinned, switch to native", true, impostor{plugin: "caching_sha2_password", switchTo: "mysql_native_password"}, "mysql_native_password auth plugin in an auth switch", 1},
		{"pinned, switch to sha256", true, impostor{plugin: "caching_sha2_password", switchTo: "sha256_password"}, "sha256_password", 1},
		{"pinned, switch to ed25519", true, impostor{plugin: "caching_sha2_password", switchTo: "client_ed25519"}, "client_ed25519", 1},
		{"pinned, native handshake", true, impostor{plugin: "mysql_native_password"}, "mysql_native_password auth plugin in its initial handshake", 0},
		{"pinned, old switch", true, impostor{plugin: "caching_sha2_password", switchRaw: []byte{0xfe}}, "mysql_old_password", 1},
		{"unpinned, switch to clear", false, impostor{plugin: "mysql_native_password", switchTo: "mysql_clear_password"}, "mysql_clear_password auth plugin in an auth switch", 1},
		{"unpinned, switch to sha256", false, impostor{plugin: "mysql_native_password", switchTo: "sha256_password"}, "sha256_password auth plugin in an auth switch", 1},
		{"unpinned, sha256 handshake", false, impostor{plugin: "sha256_password"}, "sha256_password auth plugin in its initial handshake", 0},
		{"unpinned, clear handshake", false, impostor{plugin: "mysql_clear_password"}, "mysql_clear_password auth plugin in its initial handshake", 0},
		{"unpinned, unknown plugin", false, impostor{plugin: "mysql_native_password", switchTo: "dialog"}, "dialog auth plugin", 1},
		{"unpinned, switch with no end", false, impostor{plugin: "mysql_native_password", switchRaw: []byte("\xfemysql_clear_password")}, "auth switch request is malformed", 1},
		{"handshake plugin with no end", false, impostor{raw: noEnd}, "initial handshake is malformed", 0},
		{"unpinned, native", false, impostor{plugin: "mysql_native_password"}, "", 1},
		{"unpinned, switch to native", false, impostor{plugin: "caching_sha2_password", switchTo: "mysql_native_password"}, "", 2},
		{"pinned, caching_sha2", true, impostor{plugin: "caching_sha2_password"}, "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m
			res := &config.Resource{Name: "my-review", Type: "mysql", Address: m.start(t), Username: "app", Password: password}
			if tc.pinned {
				res.UpstreamTLS.ServerPublicKeyFile = pem
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			up, err := dialUpstream(ctx, res, "", 0)
			if up != nil {
				up.Close()
			}
			sent := <-m.sent
			for _, p := range sent {
				if bytes.Contains(p, []byte(password)) {
					t.Fatalf("the impostor got the password: %q", p)
				}
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("login: %v; want it to succeed", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `resource "my-review"`) {
				t.Fatalf("login: %v; want refused with %q", err, tc.want)
			}
			if len(sent) != tc.answered {
				t.Fatalf("the client sent %d packets to the impostor, want %d: %q", len(sent), tc.answered, sent)
			}
		})
	}
}

// TestPlaintextAuthSwitchClientError: through the engine, the client of a
// session whose upstream login is refused gets what every failed upstream
// login gets: ERROR 1045 (28000), pointing at the gateway's log.
func TestPlaintextAuthSwitchClientError(t *testing.T) {
	ev := newEnv(t, nil)
	m := impostor{plugin: "caching_sha2_password", switchTo: "mysql_clear_password"}
	ev.res["my-impostor"] = &config.Resource{Name: "my-impostor", Type: "mysql", Address: m.start(t), Username: "app",
		Password: "upstream-secret-Zq8", UpstreamTLS: config.UpstreamTLS{ServerPublicKeyFile: writePEMForReview(t)}}
	db, err := sql.Open("mysql", ev.dsn("my-impostor", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Ping()
	var me *gomy.MySQLError
	if !errors.As(err, &me) || me.Number != 1045 || !strings.Contains(me.Message, "could not log in to resource \"my-impostor\"") {
		t.Fatalf("login through an impostor: %v; want ERROR 1045", err)
	}
	for _, p := range <-m.sent {
		if bytes.Contains(p, []byte("upstream-secret-Zq8")) {
			t.Fatalf("the impostor got the password: %q", p)
		}
	}
}

func writePEMForReview(t *testing.T) string {
	t.Helper()
	f := t.TempDir() + "/key.pem"
	// Any PEM will do: the impostor never asks for the key.
	if err := os.WriteFile(f, []byte("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
