package mysql

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
)

// frame is one login packet as the server sends it.
func frame(seq byte, payload []byte) []byte {
	return append([]byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}, payload...)
}

// FuzzLoginServer: whatever a plaintext upstream (or anyone on the path
// to it) sends during the login, the login does not panic, ends (the
// stream ends, and a deadline bounds it), and never writes the password
// where the server can read it: not as it is, whatever plugin, switch or
// auth-more-data the bytes ask for, with or without a pinned RSA key.
// The error does not hold it either.
func FuzzLoginServer(f *testing.F) {
	g := greet(native, greetCaps, 0)
	gs := greet(sha2, greetCaps, 0)
	seeds := [][]byte{
		append(frame(0, g), frame(2, loginOK)...),
		append(append(frame(0, gs), frame(2, fastOK)...), frame(3, loginOK)...),
		append(frame(0, gs), frame(2, fullAuth)...),
		append(append(frame(0, g), frame(2, authSwitch("mysql_clear_password", salt20))...), frame(4, loginOK)...),
		append(append(frame(0, g), frame(2, authSwitch(sha2, salt20))...), frame(4, fullAuth)...),
		append(frame(0, g), frame(2, authSwitch("client_ed25519", strings.Repeat("e", 32)))...),
		append(frame(0, g), frame(2, []byte{0xfe})...),
		frame(0, greet("dialog", greetCaps, 0)),
		frame(0, greet(native, greetCaps|capSSL, extStmtBulkOperations)),
	}
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	f.Fuzz(func(t *testing.T, stream []byte, pinned bool) {
		client, server := net.Pipe()
		defer client.Close()
		var written bytes.Buffer
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // what the gateway writes
			defer wg.Done()
			buf := make([]byte, 4096)
			for {
				n, err := server.Read(buf)
				written.Write(buf[:n])
				if err != nil {
					return
				}
			}
		}()
		go func() { // what the server says, then it hangs up
			defer wg.Done()
			_, _ = server.Write(stream)
			server.Close()
		}()
		res := &config.Resource{Name: "fuzz", Address: "pipe", Username: "app", Password: loginPassword}
		l := &login{nc: client, res: res}
		if pinned {
			l.pinned = pub
		}
		_ = client.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := l.run(context.Background(), "", 0)
		client.Close()
		wg.Wait()
		if bytes.Contains(written.Bytes(), []byte(loginPassword)) {
			t.Fatalf("the gateway wrote the password to a plaintext upstream (err %v)", err)
		}
		if err != nil && strings.Contains(err.Error(), loginPassword) {
			t.Fatalf("the error holds the password: %v", err)
		}
	})
}
