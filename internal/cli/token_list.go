package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/countersign/countersign/internal/api"
	"github.com/countersign/countersign/internal/store"
	"github.com/spf13/cobra"
)

func tokenListCmd(env *Env) *cobra.Command {
	var path string
	var all bool
	cmd := &cobra.Command{
		Use:   "list [--config FILE | --all]",
		Short: "List tokens: every token in the store with --config, else your own through the API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var toks []api.TokenJSON
			var err error
			if path != "" {
				toks, err = storeTokens(cmd.Context(), path)
			} else {
				toks, err = apiTokens(cmd, env, all)
			}
			if err != nil {
				return err
			}
			printTokens(env, toks)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "read the store named in this countersign.yaml directly (operator)")
	cmd.Flags().BoolVar(&all, "all", false, "through the API: every token (needs the admin role)")
	return cmd
}

func storeTokens(ctx context.Context, path string) ([]api.TokenJSON, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	toks, err := st.ListTokens(ctx, store.TokenFilter{})
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	out := make([]api.TokenJSON, len(toks))
	for i, t := range toks {
		e := tokenEvent(t)
		out[i] = api.TokenJSON{ID: t.ID, Identity: t.Identity.Display(), Key: t.Identity.Key(), Scopes: e.Scopes,
			CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}
	}
	return out, nil
}

func apiTokens(cmd *cobra.Command, env *Env, all bool) ([]api.TokenJSON, error) {
	c, err := newClient(cmd, env, true)
	if err != nil {
		return nil, err
	}
	path := "/v1/tokens"
	if all {
		path += "?all=true"
	}
	var list api.TokenList
	if err := c.do(cmd.Context(), http.MethodGet, path, nil, &list); err != nil {
		return nil, err
	}
	return list.Tokens, nil
}

func printTokens(env *Env, toks []api.TokenJSON) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tIDENTITY\tSCOPES\tEXPIRES\tSTATUS")
	now := time.Now()
	for _, t := range toks {
		status := "active"
		switch {
		case t.RevokedAt != nil:
			status = "revoked"
		case !now.Before(t.ExpiresAt):
			status = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Identity, joinScopes(t.Scopes), t.ExpiresAt.Local().Format(time.RFC3339), status)
	}
	tw.Flush()
}

func joinScopes(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	out := s[0]
	for _, x := range s[1:] {
		out += "," + x
	}
	return out
}

func tokenRevokeCmd(env *Env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "revoke ID [--config FILE]",
		Short: "Revoke a token at once: directly in the store with --config, else through the API (your own, or any as admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if path != "" {
				if err := revokeInStore(cmd.Context(), path, id); err != nil {
					return err
				}
			} else {
				c, err := newClient(cmd, env, true)
				if err != nil {
					return err
				}
				if err := c.do(cmd.Context(), http.MethodDelete, "/v1/tokens/"+pathEscape(id), nil, nil); err != nil {
					return err
				}
			}
			fmt.Fprintf(env.Stdout, "revoked %s\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", "", "write to the store named in this countersign.yaml directly (operator)")
	return cmd
}

func revokeInStore(ctx context.Context, path, id string) error {
	cfg, err := loadConfig(path)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.RevokeToken(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("there is no token %q; 'countersign token list --config %s' shows the ids", id, path)
		}
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	return addAdminEvent(ctx, st, "token.revoke", api.TokenEvent{TokenID: id, Via: "cli"})
}
