package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 365 * 24 * time.Hour
	// renewBefore: a certificate this close to its end is made again, so a
	// gateway restarted now and then never serves an expired one.
	renewBefore = 30 * 24 * time.Hour
	// backdate absorbs small clock differences between gateway and clients.
	backdate = 5 * time.Minute
)

// LoadOrCreate returns the generated TLS identity kept in dataDir, making
// or renewing what is missing, expiring or no longer matching hostnames.
func LoadOrCreate(dataDir string, hostnames []string) (*Bundle, error) {
	return loadOrCreate(dataDir, hostnames, time.Now())
}

func loadOrCreate(dataDir string, hostnames []string, now time.Time) (*Bundle, error) {
	if dataDir == "" {
		return nil, errors.New("pki: no data directory to keep the generated certificates in")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: creating %s: %w", dataDir, err)
	}
	ca, caKey, fresh, err := loadOrCreateCA(dataDir, now)
	if err != nil {
		return nil, err
	}
	dns, ips := wantSANs(hostnames)
	leafPEM, keyPEM, err := readPair(dataDir, ServerFile, ServerKeyFile)
	if err != nil {
		return nil, err
	}
	cert, ok := usableServer(leafPEM, keyPEM, ca, dns, ips, now)
	if fresh || !ok {
		if cert, err = newServer(dataDir, ca, caKey, dns, ips, now); err != nil {
			return nil, err
		}
	}
	caPath := filepath.Join(dataDir, CAFile)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	return &Bundle{Cert: cert, Leaf: cert.Leaf, CAPEM: caPEM, CAPath: caPath}, nil
}

// loadOrCreateCA reads the CA; it makes a new one when there is none or when
// the old one is about to expire (fresh reports that). A CA that exists but
// cannot be read is an error, never silently replaced: clients trust it.
func loadOrCreateCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, bool, error) {
	certPEM, keyPEM, err := readPair(dir, CAFile, CAKeyFile)
	if err != nil {
		return nil, nil, false, err
	}
	switch {
	case certPEM == nil && keyPEM == nil:
		return newCA(dir, now)
	case certPEM == nil || keyPEM == nil:
		return nil, nil, false, fmt.Errorf("pki: %s and %s must both exist in %s; restore the missing one, or remove both to make a new CA (clients must then trust it again)", CAFile, CAKeyFile, dir)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, false, fmt.Errorf("pki: the CA in %s is unusable (%v); restore it, or remove %s and %s to make a new one", dir, err, CAFile, CAKeyFile)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !pair.Leaf.IsCA {
		return nil, nil, false, fmt.Errorf("pki: %s in %s is not a certificate authority; remove %s and %s to make a new one", CAFile, dir, CAFile, CAKeyFile)
	}
	if now.Add(renewBefore).After(pair.Leaf.NotAfter) {
		return newCA(dir, now)
	}
	return pair.Leaf, signer, false, nil
}

// readPair reads two files; a missing one is nil, not an error.
func readPair(dir, certName, keyName string) (certPEM, keyPEM []byte, err error) {
	if certPEM, err = readOptional(filepath.Join(dir, certName)); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = readOptional(filepath.Join(dir, keyName)); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

func readOptional(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pki: reading %s: %w", path, err)
	}
	return b, nil
}

func newCA(dir string, now time.Time) (*x509.Certificate, crypto.Signer, bool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, false, fmt.Errorf("pki: generating the CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "countersign local CA", Organization: []string{"countersign"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, false, fmt.Errorf("pki: signing the CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, false, err
	}
	// Key first: a CA certificate without its key would block the next start.
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return nil, nil, false, err
	}
	if err := writeCert(filepath.Join(dir, CAFile), der); err != nil {
		return nil, nil, false, err
	}
	return ca, key, true, nil
}

// usableServer reports whether the stored server certificate can be served
// again: it parses, matches its key, is signed by ca, covers exactly the
// wanted SANs and does not expire within renewBefore.
func usableServer(certPEM, keyPEM []byte, ca *x509.Certificate, dns []string, ips []net.IP, now time.Time) (tls.Certificate, bool) {
	if certPEM == nil || keyPEM == nil {
		return tls.Certificate{}, false
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, false
	}
	leaf := pair.Leaf
	if leaf.CheckSignatureFrom(ca) != nil || now.Add(renewBefore).After(leaf.NotAfter) {
		return tls.Certificate{}, false
	}
	if !sameStrings(leaf.DNSNames, dns) || !sameIPs(leaf.IPAddresses, ips) {
		return tls.Certificate{}, false
	}
	return pair, true
}

func newServer(dir string, ca *x509.Certificate, caKey crypto.Signer, dns []string, ips []net.IP, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generating the server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: dns[0], Organization: []string{"countersign"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(serverValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: signing the server certificate: %w", err)
	}
	if err := writeKey(filepath.Join(dir, ServerKeyFile), key); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeCert(filepath.Join(dir, ServerFile), der); err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// wantSANs is localhost, 127.0.0.1 and ::1 plus the configured host names,
// each once, sorted so that a reordered config is not a change.
func wantSANs(hostnames []string) ([]string, []net.IP) {
	dns := []string{"localhost"}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	for _, h := range hostnames {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if h = strings.ToLower(h); h != "localhost" {
			dns = append(dns, h)
		}
	}
	slices.Sort(dns[1:])
	dns = slices.Compact(dns)
	slices.SortFunc(ips, func(a, b net.IP) int { return strings.Compare(string(a.To16()), string(b.To16())) })
	ips = slices.CompactFunc(ips, func(a, b net.IP) bool { return a.Equal(b) })
	return dns, ips
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func sameIPs(a, b []net.IP) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, x.Equal) {
			return false
		}
	}
	return true
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		// crypto/rand does not fail on supported platforms; a fixed serial
		// would still make a valid (if less unique) certificate.
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: encoding %s: %w", path, err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	return nil
}

func writeCert(path string, der []byte) error {
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	return nil
}
