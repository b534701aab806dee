package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/api"
	"github.com/spf13/cobra"
)

// client calls one gateway's API over fully verified TLS.
type client struct {
	server string // https://host:port, no trailing slash
	token  string // "" for unauthenticated calls (login, info)
	caFile string // "" = system roots
	hc     *http.Client
}

var errNotLoggedIn = errors.New("not logged in: run 'countersign login' or set COUNTERSIGN_TOKEN")

// newClient resolves the gateway, its CA and (if needToken) the token:
// flags, then environment, then the credentials file. The saved token is
// only sent to the server it was issued by.
func newClient(cmd *cobra.Command, env *Env, needToken bool) (*client, error) {
	creds, err := env.readCredentials()
	if err != nil {
		return nil, err
	}
	server, err := resolveServer(cmd, env, creds)
	if err != nil {
		return nil, err
	}
	saved := creds != nil && creds.Server == server
	c := &client{server: server}
	c.caFile, _ = cmd.Flags().GetString("ca-cert")
	if c.caFile == "" {
		c.caFile = env.Getenv("COUNTERSIGN_CA_CERT")
	}
	if c.caFile == "" && saved {
		c.caFile = creds.CACert
	}
	if needToken {
		if c.token, err = resolveToken(env, creds, saved); err != nil {
			return nil, err
		}
	}
	if c.hc, err = httpClient(c.caFile); err != nil {
		return nil, err
	}
	return c, nil
}

func resolveServer(cmd *cobra.Command, env *Env, creds *Credentials) (string, error) {
	raw, _ := cmd.Flags().GetString("server")
	if raw == "" {
		raw = env.Getenv("COUNTERSIGN_SERVER")
	}
	if raw == "" && creds != nil {
		raw = creds.Server
	}
	if raw == "" {
		return "", errors.New("which gateway? pass --server https://HOST:PORT, set COUNTERSIGN_SERVER, or run 'countersign login --server URL'")
	}
	return normalizeServer(raw)
}

// normalizeServer makes "host:port" into "https://host:port" and refuses
// anything but https: a token must never cross the network in plaintext.
func normalizeServer(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("the gateway address %q is not a URL; write https://HOST:PORT", raw)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("the gateway address %q must use https:// (tokens are never sent over plain http)", raw)
	}
	return "https://" + u.Host + strings.TrimRight(u.Path, "/"), nil
}

func resolveToken(env *Env, creds *Credentials, saved bool) (string, error) {
	if t := strings.TrimSpace(env.Getenv("COUNTERSIGN_TOKEN")); t != "" {
		return t, nil
	}
	if !saved || creds.Token == "" {
		return "", errNotLoggedIn
	}
	if !creds.ExpiresAt.IsZero() && time.Now().After(creds.ExpiresAt) {
		return "", fmt.Errorf("your login to %s expired at %s: run 'countersign login' again", creds.Server, creds.ExpiresAt.Local().Format(time.RFC3339))
	}
	return creds.Token, nil
}

// httpClient verifies the gateway against caFile, or the system roots when
// it is empty. There is no way to skip verification.
func httpClient(caFile string) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read the CA file: %w; pass the gateway's CA with --ca-cert (the operator prints it with 'countersign ca')", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA file %s holds no PEM certificate; get it with 'countersign ca --config FILE'", caFile)
		}
		cfg.RootCAs = pool
	}
	tr := &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 10 * time.Second}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// apiError is an error answer of the gateway.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

// do sends in as JSON (unless nil) and decodes a 2xx answer into out
// (unless nil). Error answers become *apiError with the gateway's message.
func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("read the gateway's answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 || resp.StatusCode == http.StatusAccepted {
		return answerError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the gateway at %s answered something that is not the countersign API (%v); check --server", c.server, err)
	}
	return nil
}

func answerError(status int, data []byte) error {
	var eb api.ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
		return &apiError{Status: status, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return &apiError{Status: status, Code: "http", Message: fmt.Sprintf("the gateway answered HTTP %d without an error message; check --server", status)}
}

// transportError explains the failures a person can fix.
func (c *client) transportError(err error) error {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		hint := "pass the gateway's CA with --ca-cert FILE or COUNTERSIGN_CA_CERT (the operator prints it with 'countersign ca --config FILE')"
		if c.caFile != "" {
			hint = fmt.Sprintf("the CA in %s does not verify it: check that it is this gateway's CA and that %s is one of the certificate's names", c.caFile, c.server)
		}
		return fmt.Errorf("cannot verify the certificate of %s (%v); %s", c.server, verr.Err, hint)
	}
	return fmt.Errorf("cannot reach the gateway at %s: %w", c.server, err)
}

func pathEscape(s string) string { return url.PathEscape(s) }
