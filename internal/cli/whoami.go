package cli

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/api"
	"github.com/countersign/countersign/internal/pki"
	"github.com/spf13/cobra"
)

func whoamiCmd(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who the gateway knows you as: identity, groups, roles, token expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, env, true)
			if err != nil {
				return err
			}
			var me api.Me
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/me", nil, &me); err != nil {
				return err
			}
			w := env.Stdout
			fmt.Fprintf(w, "identity: %s (%s, %s)\n", me.Identity.Display, me.Identity.Source, me.Identity.Key)
			fmt.Fprintf(w, "groups:   %s\n", orNone(me.Groups))
			fmt.Fprintf(w, "roles:    %s\n", orNone(me.Roles))
			fmt.Fprintf(w, "token:    %s, expires %s\n", me.Token.ID, me.Token.ExpiresAt.Local().Format(time.RFC3339))
			return nil
		},
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func caCmd(env *Env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "ca --config FILE",
		Short: "Print the CA certificate clients trust to verify the gateway (sslrootcert, --ca-cert)",
		Long: "Print the PEM of the CA that signs the gateway's certificate. With no tls.cert_file configured,\n" +
			"this is the local CA made at first start beside the store (made now if the gateway never started).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(path)
			if err != nil {
				return err
			}
			if err := cfg.EnsureDataDir(); err != nil {
				return err
			}
			b, err := pki.ForConfig(cfg.TLS, cfg.DataDir, cfg.Listen.Hostnames)
			if err != nil {
				return err
			}
			if len(b.CAPEM) == 0 {
				return fmt.Errorf("tls.cert_file is set without tls.ca_file in %s: set tls.ca_file to the CA that signed it (a publicly trusted certificate needs none)", cfg.Path)
			}
			_, err = env.Stdout.Write(b.CAPEM)
			return err
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "the gateway's countersign.yaml (required)")
	return cmd
}
