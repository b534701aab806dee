package e2e

import (
	"bytes"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMariadbClientOverTLS: the real mariadb client through the gateway.
// Over verified TLS a SELECT works; a plaintext attempt is refused before the
// client sends its token (the token never crosses the wire in the clear); a
// bad token gets error 1045.
func TestMariadbClientOverTLS(t *testing.T) {
	t.Parallel()
	schema := mysqlNotes(t, "hello from mariadb")
	g := newGateway(t, resourceSpec{Name: "my-app", Type: "mysql"})
	alice := g.token("alice", "engineers")
	g.start()
	host, port, _ := net.SplitHostPort(g.mysql)

	mariadb := func(addrPort, password string, extra ...string) (string, int) {
		args := append([]string{"--no-defaults", "-h", host, "-P", addrPort, "-u", "my-app", "--password=" + password,
			"--batch", "--skip-column-names"}, extra...)
		args = append(args, "-e", "SELECT body FROM notes WHERE id = 1", schema)
		cmd := exec.Command("mariadb", args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting mariadb: %v", err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("mariadb %v did not finish within 30s:\n%s", extra, out.String())
		}
		return out.String(), cmd.ProcessState.ExitCode()
	}
	tls := []string{"--ssl", "--ssl-verify-server-cert", "--ssl-ca=" + g.caPath}

	t.Run("select over verified TLS", func(t *testing.T) {
		out, code := mariadb(port, alice, tls...)
		if code != 0 || strings.TrimSpace(out) != "hello from mariadb" {
			t.Fatalf("mariadb over TLS: exit %d, output %q; want the row", code, out)
		}
	})

	t.Run("plaintext refused before the token is sent", func(t *testing.T) {
		relay := newTapRelay(t, g.mysql)
		out, code := mariadb(relay.port(), alice, "--skip-ssl")
		if code == 0 {
			t.Fatalf("a plaintext connection was served:\n%s", out)
		}
		if !strings.Contains(out, "3159") && !strings.Contains(strings.ToLower(out), "tls") {
			t.Errorf("the refusal does not say TLS is needed:\n%s", out)
		}
		if sent := relay.clientBytes(); bytes.Contains(sent, []byte(alice)) {
			t.Fatalf("the client sent its token in plaintext (%d bytes captured): the gateway asked for it before TLS", len(sent))
		} else if len(sent) == 0 {
			t.Fatalf("the relay captured nothing from the client: the check proves nothing")
		}
	})

	t.Run("bad token is 1045", func(t *testing.T) {
		out, code := mariadb(port, "cst_not-a-real-token", tls...)
		if code == 0 || !strings.Contains(out, "ERROR 1045") {
			t.Fatalf("a bad token: exit %d, output %q; want ERROR 1045", code, out)
		}
		if !strings.Contains(out, "countersign") {
			t.Errorf("the 1045 message does not say how to get a token: %q", out)
		}
	})
}

// tapRelay forwards one loopback port to the gateway and keeps every byte
// the client sent, so a test can prove what crossed the wire.
type tapRelay struct {
	l    net.Listener
	mu   sync.Mutex
	sent bytes.Buffer
	wg   sync.WaitGroup
}

func newTapRelay(t *testing.T, target string) *tapRelay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	r := &tapRelay{l: l}
	r.wg.Add(1)
	go r.serve(target)
	t.Cleanup(func() { _ = l.Close(); r.wg.Wait() })
	return r
}

func (r *tapRelay) port() string { return strings.Split(r.l.Addr().String(), ":")[1] }

func (r *tapRelay) serve(target string) {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			continue
		}
		r.wg.Add(2)
		go func() {
			defer r.wg.Done()
			_, _ = io.Copy(up, io.TeeReader(c, &lockedWriter{r: r}))
			_ = up.Close()
		}()
		go func() {
			defer r.wg.Done()
			_, _ = io.Copy(c, up)
			_ = c.Close()
		}()
	}
}

type lockedWriter struct{ r *tapRelay }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.sent.Write(p)
}

func (r *tapRelay) clientBytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.sent.Bytes()...)
}
