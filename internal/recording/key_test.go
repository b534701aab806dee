package recording_test

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
)

func TestLoadOrCreateKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "recording.key")
	k1, err := recording.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", info.Mode())
	}
	k2, err := recording.LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("reload: %v, same key %v", err, k1.Equal(k2))
	}
	os.Chmod(path, 0o640)
	if _, err := recording.LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key: %v", err)
	}
}

func TestParsePrivateKey(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), true},
		{"seed", base64.StdEncoding.EncodeToString(key.Seed()) + "\n", true},
		{"full key", base64.StdEncoding.EncodeToString(key), true},
		{"bad half", base64.StdEncoding.EncodeToString(append(key.Seed(), make([]byte, 32)...)), false},
		{"short", base64.StdEncoding.EncodeToString([]byte("short")), false},
		{"garbage", "%%%", false},
		{"pem not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		got, err := recording.ParsePrivateKey([]byte(tc.in))
		if (err == nil) != tc.ok || tc.ok && !got.Equal(key) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestPublicKeyString(t *testing.T) {
	t.Parallel()
	pub := newKey(t).Public().(ed25519.PublicKey)
	s := recording.PublicKeyString(pub)
	got, err := recording.ParsePublicKey(s)
	if !strings.HasPrefix(s, "ed25519:") || err != nil || !got.Equal(pub) {
		t.Fatalf("%s: %v", s, err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	if got, err := recording.ParsePublicKey(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))); err != nil || !got.Equal(pub) {
		t.Fatalf("pem: %v", err)
	}
	for _, bad := range []string{"", "ed25519:AAAA", "nonsense"} {
		if _, err := recording.ParsePublicKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if id := recording.KeyID(pub); len(id) != 16 {
		t.Fatalf("key id %q", id)
	}
}

func TestCheckpointSignatureCoversEveryField(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	pub := key.Public().(ed25519.PublicKey)
	cp := recording.Checkpoint{Writer: "w-1", Seq: 7, Hash: make([]byte, 32), Time: time.Unix(1, 0)}
	recording.SignCheckpoint(key, &cp)
	if !recording.CheckSignature(cp, pub) {
		t.Fatal("own signature does not verify")
	}
	changes := []func(*recording.Checkpoint){
		func(c *recording.Checkpoint) { c.Writer = "w-2" },
		func(c *recording.Checkpoint) { c.Seq = 8 },
		func(c *recording.Checkpoint) { c.Hash = append([]byte{1}, c.Hash[1:]...) },
		func(c *recording.Checkpoint) { c.Time = c.Time.Add(time.Microsecond) },
		func(c *recording.Checkpoint) { c.Final = true },
	}
	for i, change := range changes {
		c := cp
		change(&c)
		if recording.CheckSignature(c, pub) {
			t.Errorf("change %d kept the signature valid", i)
		}
	}
}
