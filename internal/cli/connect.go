package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/api"
	"github.com/spf13/cobra"
)

func connectCmd(env *Env) *cobra.Command {
	var printOnly bool
	var breakglass string
	cmd := &cobra.Command{
		Use:   "connect RESOURCE [--print] [-- psql|mysql ARGS...]",
		Short: "Get a short-lived password for one resource, and print how to connect or run the client",
		Long: "Mint a resource token (a password for RESOURCE only, default 1h) and print a connection string\n" +
			"with full certificate verification, or run the client after -- with the password, host, port,\n" +
			"database and CA in its environment (PGPASSWORD, PGSSLMODE=verify-full, PGSSLROOTCERT, ...).",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			resource, client := args, []string(nil)
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				resource, client = args[:dash], args[dash:]
			}
			if len(resource) != 1 {
				return errors.New("name exactly one resource: countersign connect RESOURCE [-- psql ...]")
			}
			if printOnly && len(client) > 0 {
				return errors.New("--print and a client after -- exclude each other")
			}
			return connect(cmd, env, resource[0], breakglass, client)
		},
	}
	cmd.Flags().BoolVar(&printOnly, "print", false, "print the connection string and password (the default without a client)")
	cmd.Flags().StringVar(&breakglass, "breakglass", "", "break glass for this token's sessions, with this reason: operations that need review run at once, each recorded as break-glass with a retrospective review (breakglass role only)")
	return cmd
}

// target is how a client reaches one resource through the gateway.
type target struct {
	issued api.Issued
	host   string
	port   string
	caFile string // "" = the system roots verify the gateway
}

func connect(cmd *cobra.Command, env *Env, resource, breakglass string, client []string) error {
	c, err := newClient(cmd, env, true)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	var info api.Info
	if err := c.do(ctx, http.MethodGet, "/v1/info", nil, &info); err != nil {
		return err
	}
	var t target
	req := map[string]string{"resource": resource}
	if breakglass != "" {
		req["breakglass"] = breakglass
	}
	if err := c.do(ctx, http.MethodPost, "/v1/connect", req, &t.issued); err != nil {
		return err
	}
	if err := t.locate(env, c, info); err != nil {
		return err
	}
	if len(client) == 0 {
		t.print(env)
		return nil
	}
	return t.run(ctx, env, client)
}

// locate finds the engine's port in /v1/info and the host the person
// already reaches the gateway by (a name the certificate covers), and
// saves the gateway's CA for the client.
func (t *target) locate(env *Env, c *client, info api.Info) error {
	addr, what := info.Postgres, "listen.postgres"
	if t.issued.Type == "mysql" {
		addr, what = info.MySQL, "listen.mysql"
	}
	if addr == "" {
		return fmt.Errorf("the gateway serves no %s clients (%s is not set); ask your operator", t.issued.Type, what)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("the gateway reports an engine address %q that is not host:port", addr)
	}
	u, err := url.Parse(c.server)
	if err != nil {
		return err
	}
	t.host, t.port = u.Hostname(), port
	if info.CAPEM == "" {
		return nil
	}
	dir, err := env.appDir()
	if err != nil {
		return err
	}
	t.caFile = filepath.Join(dir, "ca-"+safeName(u.Host)+".pem")
	if err := writePrivate(t.caFile, []byte(info.CAPEM), 0o644); err != nil {
		return fmt.Errorf("save the gateway's CA for the client: %w", err)
	}
	return nil
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, s)
}

func (t *target) rootCert() string {
	if t.caFile == "" {
		return "system"
	}
	return t.caFile
}

// ConnInfo is the libpq connection string, without the password.
func (t *target) ConnInfo() string {
	return fmt.Sprintf("host=%s port=%s dbname=%s user=%s sslmode=verify-full sslrootcert=%s",
		quoteConn(t.host), t.port, quoteConn(t.issued.Resource), quoteConn(t.issued.User), quoteConn(t.rootCert()))
}

// quoteConn quotes a libpq keyword value when it needs it.
func quoteConn(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// print shows how to connect. stdout holds the connection string and the
// password line; the explanation goes to stderr.
func (t *target) print(env *Env) {
	until := t.issued.ExpiresAt.Local().Format(time.RFC3339)
	if t.issued.Type == "mysql" {
		fmt.Fprintf(env.Stdout, "mysql -h %s -P %s -u %s --ssl-verify-server-cert --ssl-ca=%s\nexport MYSQL_PWD=%s\n",
			t.host, t.port, t.issued.Resource, t.rootCert(), t.issued.Token)
		fmt.Fprintf(env.Stderr, "# The password is a token for %s only, valid until %s. Set MYSQL_PWD, then run the mysql line.\n", t.issued.Resource, until)
		return
	}
	fmt.Fprintf(env.Stdout, "%s\nexport PGPASSWORD=%s\n", t.ConnInfo(), t.issued.Token)
	fmt.Fprintf(env.Stderr, "# The password is a token for %s only, valid until %s.\n# Set PGPASSWORD, then: psql \"%s\"\n", t.issued.Resource, until, t.ConnInfo())
}

// run starts the client with the connection in its environment and waits
// for it; its exit code becomes ours.
func (t *target) run(ctx context.Context, env *Env, argv []string) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = env.Stdin, env.Stdout, env.Stderr
	cmd.Env = append(os.Environ(), t.clientEnv()...)
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return err
		}
		return fmt.Errorf("run %s: %w", argv[0], err)
	}
	return nil
}

func (t *target) clientEnv() []string {
	if t.issued.Type == "mysql" {
		return []string{"MYSQL_PWD=" + t.issued.Token, "MYSQL_HOST=" + t.host, "MYSQL_TCP_PORT=" + t.port}
	}
	return []string{
		"PGPASSWORD=" + t.issued.Token,
		"PGHOST=" + t.host,
		"PGPORT=" + t.port,
		"PGDATABASE=" + t.issued.Resource,
		"PGUSER=" + t.issued.User,
		"PGSSLMODE=verify-full",
		"PGSSLROOTCERT=" + t.rootCert(),
	}
}
