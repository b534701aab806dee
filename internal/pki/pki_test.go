package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
)

func TestLoadOrCreateFirstStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := LoadOrCreate(dir, []string{"gw.example.com", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{CAFile: 0o644, CAKeyFile: 0o600, ServerFile: 0o644, ServerKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	if b.CAPath != filepath.Join(dir, CAFile) {
		t.Errorf("CAPath = %q", b.CAPath)
	}
	if got := b.Leaf.NotAfter.Sub(b.Leaf.NotBefore); got < 364*24*time.Hour || got > 366*24*time.Hour {
		t.Errorf("server validity %v, want about a year", got)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "gw.example.com", "10.1.2.3"} {
		t.Run(name, func(t *testing.T) { handshake(t, b, name) })
	}
}

// handshake serves b over a real TLS connection and verifies it fully as
// a client that trusts only the bundle's CA and dials serverName.
func handshake(t *testing.T, b *Bundle, serverName string) {
	t.Helper()
	pool, err := b.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", b.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.(*tls.Conn).Handshake()
		c.Close()
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: serverName})
	if err != nil {
		t.Fatalf("verified handshake as %s: %v", serverName, err)
	}
	c.Close()
}

func TestServerTLSRefusesOldVersions(t *testing.T) {
	t.Parallel()
	b, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := b.ServerTLS().MinVersion; v != tls.VersionTLS12 {
		t.Fatalf("MinVersion = %x, want TLS 1.2", v)
	}
}

func TestUnknownNameRefused(t *testing.T) {
	t.Parallel()
	b, err := LoadOrCreate(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := b.CertPool()
	if _, err := b.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "evil.example.com"}); err == nil {
		t.Fatal("certificate verified for a name it must not cover")
	}
}

// TestRenewal runs LoadOrCreate twice, the second time with a changed
// input, and checks which of CA and server certificate were kept.
func TestRenewal(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		name       string
		hosts2     []string
		now2       time.Time
		sameCA     bool
		sameServer bool
	}{
		{"reused", []string{"a.example"}, now, true, true},
		{"hosts reordered", []string{"A.example", "a.example"}, now.Add(time.Hour), true, true},
		{"host added", []string{"a.example", "b.example"}, now, true, false},
		{"host removed", nil, now, true, false},
		{"server expires within 30 days", []string{"a.example"}, now.Add(340 * 24 * time.Hour), true, false},
		{"server still good", []string{"a.example"}, now.Add(300 * 24 * time.Hour), true, true},
		{"CA expires within 30 days", []string{"a.example"}, now.Add(caValidity - 10*24*time.Hour), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			b1, err := loadOrCreate(dir, []string{"a.example"}, now)
			if err != nil {
				t.Fatal(err)
			}
			b2, err := loadOrCreate(dir, tt.hosts2, tt.now2)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b1.CAPEM) == string(b2.CAPEM); got != tt.sameCA {
				t.Errorf("same CA = %v, want %v", got, tt.sameCA)
			}
			if got := b1.Leaf.SerialNumber.Cmp(b2.Leaf.SerialNumber) == 0; got != tt.sameServer {
				t.Errorf("same server certificate = %v, want %v", got, tt.sameServer)
			}
			pool, _ := b2.CertPool()
			if _, err := b2.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost", CurrentTime: tt.now2}); err != nil {
				t.Errorf("server certificate does not verify against the CA: %v", err)
			}
			again, err := loadOrCreate(dir, tt.hosts2, tt.now2)
			if err != nil || again.Leaf.SerialNumber.Cmp(b2.Leaf.SerialNumber) != 0 {
				t.Errorf("third start did not reuse the renewed certificate (err %v)", err)
			}
		})
	}
}

func TestBrokenFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		break_  func(dir string) error
		wantErr string // "" = recovers by making a new server certificate
	}{
		{"CA key missing", func(d string) error { return os.Remove(filepath.Join(d, CAKeyFile)) }, "must both exist"},
		{"CA certificate missing", func(d string) error { return os.Remove(filepath.Join(d, CAFile)) }, "must both exist"},
		{"CA garbage", func(d string) error { return os.WriteFile(filepath.Join(d, CAFile), []byte("garbage"), 0o644) }, "unusable"},
		{"CA is the server certificate", func(d string) error {
			if err := copyFile(filepath.Join(d, ServerFile), filepath.Join(d, CAFile)); err != nil {
				return err
			}
			return copyFile(filepath.Join(d, ServerKeyFile), filepath.Join(d, CAKeyFile))
		}, "not a certificate authority"},
		{"server garbage", func(d string) error { return os.WriteFile(filepath.Join(d, ServerFile), []byte("garbage"), 0o644) }, ""},
		{"server key missing", func(d string) error { return os.Remove(filepath.Join(d, ServerKeyFile)) }, ""},
		{"server key of another certificate", func(d string) error {
			return copyFile(filepath.Join(d, CAKeyFile), filepath.Join(d, ServerKeyFile))
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if _, err := LoadOrCreate(dir, nil); err != nil {
				t.Fatal(err)
			}
			if err := tt.break_(dir); err != nil {
				t.Fatal(err)
			}
			b, err := LoadOrCreate(dir, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			handshake(t, b, "localhost")
		})
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

func TestLoadFiles(t *testing.T) {
	t.Parallel()
	gen := t.TempDir()
	if _, err := LoadOrCreate(gen, nil); err != nil {
		t.Fatal(err)
	}
	p := func(n string) string { return filepath.Join(gen, n) }
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		cert, key, ca   string
		wantErr         string
		wantCA, handsOK bool
	}{
		{"all three", p(ServerFile), p(ServerKeyFile), p(CAFile), "", true, true},
		{"no CA", p(ServerFile), p(ServerKeyFile), "", "", false, false},
		{"key missing", p(ServerFile), "", "", "must be set together", false, false},
		{"cert missing", "", p(ServerKeyFile), "", "must be set together", false, false},
		{"wrong key", p(ServerFile), p(CAKeyFile), "", "loading cert_file", false, false},
		{"no such file", p("nope.pem"), p(ServerKeyFile), "", "loading cert_file", false, false},
		{"junk CA", p(ServerFile), p(ServerKeyFile), junk, "ca_file", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := ForConfig(config.TLS{CertFile: tt.cert, KeyFile: tt.key, CAFile: tt.ca}, t.TempDir(), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(b.CAPEM) > 0; got != tt.wantCA {
				t.Fatalf("has CA = %v, want %v", got, tt.wantCA)
			}
			if tt.handsOK {
				handshake(t, b, "127.0.0.1")
			}
		})
	}
}

func TestForConfigGenerates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := ForConfig(config.TLS{}, dir, []string{"gw.internal"})
	if err != nil {
		t.Fatal(err)
	}
	handshake(t, b, "gw.internal")
	if _, err := os.Stat(filepath.Join(dir, CAFile)); err != nil {
		t.Fatal(err)
	}
}

func TestWantSANs(t *testing.T) {
	t.Parallel()
	dns, ips := wantSANs([]string{" GW.example ", "", "127.0.0.1", "::1", "192.0.2.1", "gw.example", "LOCALHOST", "a.example"})
	if strings.Join(dns, ",") != "localhost,a.example,gw.example" {
		t.Errorf("dns = %v", dns)
	}
	if !sameIPs(ips, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("192.0.2.1")}) {
		t.Errorf("ips = %v", ips)
	}
}
