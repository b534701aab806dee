package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/countersign/countersign/internal/config"
)

// File names inside the data directory.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	ServerFile    = "server.pem"
	ServerKeyFile = "server-key.pem"
)

// Bundle is the gateway's TLS identity.
type Bundle struct {
	// Cert is the server certificate chain and its key.
	Cert tls.Certificate
	// Leaf is the parsed server certificate.
	Leaf *x509.Certificate
	// CAPEM is the PEM of the CA that clients trust to verify the gateway;
	// empty when the operator configured no CA file.
	CAPEM []byte
	// CAPath is the file CAPEM was read from ("" when CAPEM is empty).
	CAPath string
}

// ServerTLS returns a server configuration that serves Cert, TLS 1.2 or
// newer. Each call returns a fresh config the caller may change.
func (b *Bundle) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{b.Cert},
	}
}

// CertPool returns a pool holding the CA, for clients (tests, the CLI).
func (b *Bundle) CertPool() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b.CAPEM) {
		return nil, errors.New("pki: the bundle holds no CA certificate")
	}
	return pool, nil
}

// ForConfig returns the operator's certificate when tls.cert_file is set,
// else the generated one kept in dataDir.
func ForConfig(c config.TLS, dataDir string, hostnames []string) (*Bundle, error) {
	if c.CertFile != "" || c.KeyFile != "" {
		return LoadFiles(c.CertFile, c.KeyFile, c.CAFile)
	}
	return LoadOrCreate(dataDir, hostnames)
}

// LoadFiles loads an operator-provided certificate chain and key, and the CA
// file clients should trust (optional: a publicly trusted certificate needs
// none).
func LoadFiles(certFile, keyFile, caFile string) (*Bundle, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: cert_file and key_file must be set together; set both, or neither to use the generated local CA")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: loading cert_file %s and key_file %s: %w", certFile, keyFile, err)
	}
	b := &Bundle{Cert: cert, Leaf: cert.Leaf}
	if caFile == "" {
		return b, nil
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tls: reading ca_file: %w", err)
	}
	if _, err := parseCertPEM(caPEM); err != nil {
		return nil, fmt.Errorf("tls: ca_file %s: %w", caFile, err)
	}
	b.CAPEM, b.CAPath = caPEM, caFile
	return b, nil
}

// parseCertPEM parses the first CERTIFICATE block.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM CERTIFICATE block found")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// writeFileAtomic writes data to path with mode via a temporary file and a
// rename, so a crash never leaves half a key behind.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after a successful rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(name, path)
}
