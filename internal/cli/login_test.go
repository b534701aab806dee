package cli

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/oauth2-proxy/mockoidc"
)

// startProvider runs a real OIDC provider (discovery, JWKS, signed ID
// tokens) that logs in user on the first authorization request.
func startProvider(t *testing.T, user mockoidc.User) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.QueueUser(user)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// oidcConfig is testConfig with identity.oidc pointing at m. The client
// secret variable has a name of its own per test, so parallel tests do not
// share it.
func oidcConfig(t *testing.T, m *mockoidc.MockOIDC) string {
	t.Helper()
	name := "CS_TEST_OIDC_SECRET_" + strings.NewReplacer("/", "_", "-", "_").Replace(t.Name())
	os.Setenv(name, m.ClientSecret)
	t.Cleanup(func() { os.Unsetenv(name) })
	return strings.Replace(testConfig, "identity:\n", fmt.Sprintf(
		"identity:\n  oidc:\n    issuer: %s\n    client_id: %s\n    client_secret_env: %s\n    scopes: [openid, email, profile, groups]\n",
		m.Issuer(), m.ClientID, name), 1)
}

// browser plays the person's browser: it follows the provider's redirects
// to the loopback listener of `login`.
func browser(url string) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("the login ended with HTTP %d at %s", res.StatusCode, res.Request.URL)
	}
	return nil
}

func TestLoginWithBrowser(t *testing.T) {
	t.Parallel()
	m := startProvider(t, &mockoidc.MockUser{Subject: "u-erin", Email: "erin@example.com", EmailVerified: true,
		PreferredUsername: "erin", Groups: []string{"engineers", "platform-admins"}})
	g := startGateway(t, oidcConfig(t, m))
	u := g.user(t, "")
	delete(u.vars, "COUNTERSIGN_TOKEN")

	var out, errb strings.Builder
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return u.vars[k] },
		ConfigDir: func() (string, error) { return u.dir, nil }, OpenBrowser: browser}
	if code := Run(t.Context(), env, []string{"login"}); code != 0 {
		t.Fatalf("login: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "erin@example.com") || !strings.Contains(out.String(), "admin") {
		t.Fatalf("login printed %q", out.String())
	}

	// Later commands need nothing but the credentials file.
	u.vars = map[string]string{}
	me := u.must("whoami")
	for _, want := range []string{"erin@example.com", "(oidc, " + m.Issuer() + "|u-erin)", "engineers, platform-admins", "creator, admin"} {
		if !strings.Contains(me, want) {
			t.Fatalf("whoami lacks %q:\n%s", want, me)
		}
	}
	if list := u.must("token", "list", "--all"); !strings.Contains(list, "erin@example.com") {
		t.Fatalf("token list --all:\n%s", list)
	}
}

func TestLoginRefused(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig)
	u := g.user(t, "")
	u.fails("identity.oidc is not configured", "login")
	u.fails("identity.oidc is not configured", "login", "--no-browser")
}

func TestLoginDeniedAtProvider(t *testing.T) {
	t.Parallel()
	m := startProvider(t, &mockoidc.MockUser{Subject: "u-x", Groups: []string{"engineers"}})
	g := startGateway(t, oidcConfig(t, m))
	u := g.user(t, "")
	var errb strings.Builder
	env := &Env{Stdin: strings.NewReader(""), Stdout: &strings.Builder{}, Stderr: &errb, Getenv: func(k string) string { return u.vars[k] },
		ConfigDir: func() (string, error) { return u.dir, nil },
		// The person refuses at the provider, which redirects back with
		// an error instead of a code. A stray request with another state
		// comes first and must not end the login.
		OpenBrowser: func(raw string) error {
			auth, err := url.Parse(raw)
			if err != nil {
				return err
			}
			q := auth.Query()
			back := q.Get("redirect_uri")
			if res, err := http.Get(back + "?code=stolen&state=other"); err != nil || res.StatusCode != http.StatusBadRequest {
				return fmt.Errorf("a callback with a foreign state was not refused: %v", err)
			}
			_, err = http.Get(back + "?error=access_denied&error_description=no+thanks&state=" + url.QueryEscape(q.Get("state")))
			return err
		}}
	if code := Run(t.Context(), env, []string{"login"}); code == 0 || !strings.Contains(errb.String(), "refused the login: access_denied no thanks") {
		t.Fatalf("login: exit %d: %s", code, errb.String())
	}
	if strings.Contains(errb.String(), "could not open a browser") {
		t.Fatalf("browser step failed: %s", errb.String())
	}
	if _, err := os.Stat(u.dir + "/countersign/credentials.json"); err == nil {
		t.Fatal("a refused login wrote credentials")
	}
}
