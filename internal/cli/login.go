package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/countersign/countersign/internal/api"
	"github.com/spf13/cobra"
)

// loginWait bounds how long login waits for the person at the provider;
// the gateway forgets a started login after 10 minutes anyway.
const loginWait = 10 * time.Minute

func loginCmd(env *Env) *cobra.Command {
	var noBrowser bool
	cmd := &cobra.Command{
		Use:   "login [--server URL] [--no-browser]",
		Short: "Log in with your identity provider and save an API token for later commands",
		Long: "Log in through the gateway's OIDC provider: a browser on a loopback redirect, or with --no-browser\n" +
			"the device code flow. The API token is saved (0600) in your config directory with the server and its CA.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, env, false)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), loginWait)
			defer cancel()
			var issued api.Issued
			if noBrowser {
				err = deviceLogin(ctx, env, c, &issued)
			} else {
				err = browserLogin(ctx, env, c, &issued)
			}
			if err != nil {
				return err
			}
			return saveLogin(env, c, issued)
		},
	}
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "log in with a code on another device (OIDC device authorization grant)")
	return cmd
}

type callback struct {
	code string
	err  error
}

// browserLogin runs the authorization code flow with a loopback redirect
// (RFC 8252): the provider sends the browser back to 127.0.0.1 here, and
// only the code travels on to the gateway, which holds the PKCE verifier.
func browserLogin(ctx context.Context, env *Env, c *client, out *api.Issued) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("open the loopback port for the login redirect: %w", err)
	}
	defer ln.Close()
	var start api.LoginStart
	redirect := "http://" + ln.Addr().String() + "/callback"
	if err := c.do(ctx, http.MethodPost, "/v1/login/start", map[string]string{"redirect_uri": redirect}, &start); err != nil {
		return err
	}
	got := make(chan callback, 1)
	srv := &http.Server{Handler: callbackHandler(start.State, got), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close below
	defer srv.Close()

	fmt.Fprintf(env.Stderr, "Opening your browser to log in. If it does not open, visit:\n  %s\n", start.AuthURL)
	if err := openBrowser(env, start.AuthURL); err != nil {
		fmt.Fprintf(env.Stderr, "(could not open a browser: %v)\n", err)
	}
	var cb callback
	select {
	case cb = <-got:
	case <-ctx.Done():
		return fmt.Errorf("gave up waiting for the login to finish in the browser (%v); run 'countersign login' again, or use --no-browser", ctx.Err())
	}
	if cb.err != nil {
		return cb.err
	}
	return c.do(ctx, http.MethodPost, "/v1/login/finish", map[string]string{"state": start.State, "code": cb.code}, out)
}

// callbackHandler takes the provider's redirect. A request with another
// state is not ours (a stale tab, or someone probing the port): it is
// refused and the wait goes on.
func callbackHandler(state string, got chan<- callback) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("state") != state {
			http.Error(w, "This is not the login countersign is waiting for; start again with 'countersign login'.", http.StatusBadRequest)
			return
		}
		cb := callback{code: q.Get("code")}
		switch {
		case q.Get("error") != "":
			cb.err = fmt.Errorf("the identity provider refused the login: %s %s", q.Get("error"), q.Get("error_description"))
		case cb.code == "":
			cb.err = errors.New("the identity provider sent no code; run 'countersign login' again")
		}
		select {
		case got <- cb:
			fmt.Fprintln(w, "countersign: login received; you can close this window and return to the terminal.")
		default:
			http.Error(w, "This login was already received.", http.StatusConflict)
		}
	})
	return mux
}

// openBrowser uses env.OpenBrowser, else xdg-open or open if installed.
func openBrowser(env *Env, url string) error {
	if env.OpenBrowser != nil {
		return env.OpenBrowser(url)
	}
	name := "xdg-open"
	if runtime.GOOS == "darwin" {
		name = "open"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("%s is not installed", name)
	}
	cmd := exec.Command(path, url)
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() //nolint:errcheck // reap it; its result does not matter
	return nil
}

// deviceLogin runs the device authorization grant: the person finishes on
// any device while this polls the gateway.
func deviceLogin(ctx context.Context, env *Env, c *client, out *api.Issued) error {
	var da api.DeviceStart
	if err := c.do(ctx, http.MethodPost, "/v1/login/device/start", struct{}{}, &da); err != nil {
		return err
	}
	where := da.VerificationURI
	if da.VerificationURIComplete != "" {
		where = da.VerificationURIComplete
	}
	fmt.Fprintf(env.Stderr, "To log in, open %s and enter the code %s\nWaiting for you to finish (until %s)...\n",
		where, da.UserCode, da.ExpiresAt.Local().Format(time.Kitchen))
	interval := time.Duration(max(1, da.Interval)) * time.Second
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up waiting for the device login (%v); run 'countersign login --no-browser' again", ctx.Err())
		case <-time.After(interval):
		}
		err := c.do(ctx, http.MethodPost, "/v1/login/device/poll", map[string]string{"handle": da.Handle}, out)
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == api.CodePending {
			continue
		}
		return err
	}
}

// saveLogin writes the credentials file; the CA that verified the gateway
// is copied beside it so later commands need no --ca-cert.
func saveLogin(env *Env, c *client, issued api.Issued) error {
	creds := Credentials{Server: c.server, Token: issued.Token, ExpiresAt: issued.ExpiresAt, Identity: issued.Identity.Display}
	if c.caFile != "" {
		dir, err := env.appDir()
		if err != nil {
			return err
		}
		creds.CACert = filepath.Join(dir, "ca.pem")
		if err := copyCA(c.caFile, creds.CACert); err != nil {
			return err
		}
	}
	path, err := env.writeCredentials(creds)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "logged in to %s as %s (roles: %s); token saved in %s, valid until %s\n",
		c.server, issued.Identity.Display, orNone(issued.Identity.Roles), path, issued.ExpiresAt.Local().Format(time.RFC3339))
	return nil
}

func copyCA(from, to string) error {
	if abs, err := filepath.Abs(from); err == nil && abs == to {
		return nil
	}
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("read the CA file: %w", err)
	}
	if err := writePrivate(to, b, 0o644); err != nil {
		return fmt.Errorf("save the gateway's CA: %w", err)
	}
	return nil
}
