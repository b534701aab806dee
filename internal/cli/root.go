package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Version is the release, set at build time with
// -ldflags "-X github.com/countersign/countersign/internal/cli.Version=v1.2.3".
var Version = "dev"

// Env is what commands read from and write to. Execute uses the process's;
// tests build their own.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// ConfigDir is the user's config dir (os.UserConfigDir); the
	// credentials file lives in ConfigDir/countersign.
	ConfigDir func() (string, error)
	// OpenBrowser opens a URL for `login`; nil means xdg-open or open when
	// installed, else the URL is printed.
	OpenBrowser func(url string) error
	// OnServing is called by `serve` once every listener is bound, with the
	// running server (tests read its bound addresses).
	OnServing func(*Server)
}

// DefaultEnv is the real process environment.
func DefaultEnv() *Env {
	return &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, ConfigDir: os.UserConfigDir}
}

// Execute runs the command line of the process and returns the exit code.
func Execute() int {
	return Run(context.Background(), DefaultEnv(), os.Args[1:])
}

// Run runs one command line with env and returns its exit code. An error
// is printed once, to Stderr, as "countersign: ...".
func Run(ctx context.Context, env *Env, args []string) int {
	root := NewRoot(env)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode() // the client `connect` ran already said why
	}
	fmt.Fprintf(env.Stderr, "countersign: %v\n", err)
	return 1
}

// NewRoot builds the command tree over env.
func NewRoot(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:           "countersign",
		Short:         "An access gateway with approvals, recording and masking for PostgreSQL, MySQL and Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.PersistentFlags().String("server", "", "gateway API URL, https://HOST:PORT (default $COUNTERSIGN_SERVER, else the one you logged in to)")
	root.PersistentFlags().String("ca-cert", "", "CA file that verifies the gateway (default $COUNTERSIGN_CA_CERT, else the one saved at login, else the system roots)")
	root.AddCommand(
		serveCmd(env), tokenCmd(env), caCmd(env), loginCmd(env),
		connectCmd(env), whoamiCmd(env), versionCmd(env),
		reviewsCmd(env), grantsCmd(env), sessionsCmd(env), auditCmd(env),
	)
	return root
}

func versionCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(env.Stdout, "countersign %s\n", version())
			return nil
		},
	}
}

func version() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}
