package recording

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// LoadOrCreateKey returns the Ed25519 signing key kept at path, making it
// (PKCS#8 PEM, mode 0600) when the file does not exist. An existing file
// may hold PEM ("PRIVATE KEY", PKCS#8) or the raw base64 of the 32-byte seed
// or the 64-byte private key. A key file that group or others can read is
// refused: anyone who can read it can forge checkpoints.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := loadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key, err = createKey(path)
	if errors.Is(err, fs.ErrExist) { // another process made it first
		return loadKey(path)
	}
	return key, err
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("recording key %s: %w", path, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("recording key %s is readable by group or others (mode %04o): "+
			"anyone who can read it can forge the trail; run 'chmod 600 %s' and check who read it", path, perm, path)
	}
	// A key file is small; a huge one is not ours, so read a bounded amount.
	buf, err := io.ReadAll(io.LimitReader(f, 16<<10))
	if err != nil {
		return nil, fmt.Errorf("recording key %s: %w", path, err)
	}
	key, err := ParsePrivateKey(buf)
	if err != nil {
		return nil, fmt.Errorf("recording key %s: %w", path, err)
	}
	return key, nil
}

func createKey(path string) (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("recording key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("recording key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	err = pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path) // a half-written key must not be found next start
		return nil, fmt.Errorf("recording key %s: writing it: %w", path, err)
	}
	return key, nil
}

// ParsePrivateKey reads a PKCS#8 PEM Ed25519 key, or the base64 of a
// 32-byte seed or 64-byte private key.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	b = bytes.TrimSpace(b)
	if block, _ := pem.Decode(b); block != nil {
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("not a PKCS#8 private key: %w", err)
		}
		key, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("the key is a %T, not Ed25519", k)
		}
		return key, nil
	}
	raw, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		return nil, errors.New("neither PEM nor base64; expected a PKCS#8 PEM Ed25519 key or the base64 of its seed")
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		key := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !bytes.Equal(key, raw) {
			return nil, errors.New("the 64-byte key's public half does not match its seed")
		}
		return key, nil
	}
	return nil, fmt.Errorf("base64 key is %d bytes; want a %d-byte seed or %d-byte key",
		len(raw), ed25519.SeedSize, ed25519.PrivateKeySize)
}

// PublicKeyString is the form `countersign audit pubkey` prints and
// ParsePublicKey reads: "ed25519:" followed by the standard base64 of the
// 32-byte key.
func PublicKeyString(pub ed25519.PublicKey) string {
	return "ed25519:" + base64.StdEncoding.EncodeToString(pub)
}

// ParsePublicKey reads a PublicKeyString, the bare base64 of the key, or a
// PEM "PUBLIC KEY" (PKIX).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if block, _ := pem.Decode([]byte(s)); block != nil {
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is a %T, not Ed25519", k)
		}
		return pub, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "ed25519:"))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("public key: want the output of 'countersign audit pubkey' (ed25519:BASE64)")
	}
	return ed25519.PublicKey(raw), nil
}

// KeyID is a key's fingerprint: hex of the first 8 bytes of SHA-256(pub).
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// SignCheckpoint fills c.KeyID and c.Signature.
func SignCheckpoint(key ed25519.PrivateKey, c *Checkpoint) {
	c.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	c.Signature = ed25519.Sign(key, checkpointMessage(*c))
}

// CheckSignature reports whether one of keys signed c.
func CheckSignature(c Checkpoint, keys ...ed25519.PublicKey) bool {
	return signedByOne(checkpointMessage(c), c.Signature, keys)
}

// signedByOne reports whether one of keys made sig over msg.
func signedByOne(msg, sig []byte, keys []ed25519.PublicKey) bool {
	for _, k := range keys {
		if len(k) == ed25519.PublicKeySize && ed25519.Verify(k, msg, sig) {
			return true
		}
	}
	return false
}
