package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/countersign/countersign/internal/api"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/identity"
	"github.com/countersign/countersign/internal/store"
	"github.com/spf13/cobra"
)

// operatorActor is the admin-event actor of commands run with the config
// file (and so with direct access to the store).
const operatorActor = "operator"

func tokenCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue, list and revoke countersign tokens",
	}
	cmd.AddCommand(tokenIssueCmd(env), tokenListCmd(env), tokenRevokeCmd(env))
	return cmd
}

type issueFlags struct {
	config, user, service, email string
	groups, scopes               []string
	ttl                          time.Duration
}

func tokenIssueCmd(env *Env) *cobra.Command {
	var f issueFlags
	cmd := &cobra.Command{
		Use:   "issue --config FILE (--user NAME | --service NAME) [--groups a,b] [--ttl 8h] [--scope api,resources]",
		Short: "Mint a token for a local or service identity, straight into the gateway's store; prints only the token",
		Long: "Mint a token for a local identity (--user) or a pipeline identity (--service), writing it to the store\n" +
			"named in the config. Only the token goes to stdout, so TOKEN=$(countersign token issue ...) works.\n" +
			"Roles come from the groups through identity.roles. The issue is recorded as an admin event.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return issueToken(cmd.Context(), env, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "the gateway's countersign.yaml (required)")
	fl.StringVar(&f.user, "user", "", "local identity name")
	fl.StringVar(&f.service, "service", "", "service (pipeline) identity name")
	fl.StringVar(&f.email, "email", "", "the person's email (optional)")
	fl.StringSliceVar(&f.groups, "groups", nil, "groups, comma separated; they give roles (identity.roles) and access (policy.access)")
	fl.StringSliceVar(&f.scopes, "scope", []string{"api", "resources"}, "api, resources, resource:NAME")
	fl.DurationVar(&f.ttl, "ttl", 0, "lifetime (default identity.api_token_ttl, 12h)")
	return cmd
}

func issueToken(ctx context.Context, env *Env, f issueFlags) error {
	id, err := mintedIdentity(f)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(f.config)
	if err != nil {
		return err
	}
	id.Roles = identity.RolesFor(id.Groups, api.RoleTable(cfg.Identity.Roles))
	ttl := f.ttl
	if ttl == 0 {
		ttl = cfg.Identity.APITokenTTL
	}
	scopes := make([]identity.Scope, len(f.scopes))
	for i, s := range f.scopes {
		scopes[i] = identity.Scope(strings.TrimSpace(s))
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	tokens := identity.NewTokens(st)
	secret, tok, err := tokens.Issue(ctx, id, scopes, ttl)
	if err != nil {
		return err
	}
	if err := addAdminEvent(ctx, st, "token.issue", tokenEvent(tok)); err != nil {
		_ = tokens.Revoke(ctx, tok.ID) // no token may exist that the trail does not know of
		return err
	}
	fmt.Fprintln(env.Stdout, secret)
	fmt.Fprintf(env.Stderr, "issued %s for %s (%s), roles %s, expires %s\n",
		tok.ID, id.Display(), strings.Join(f.scopes, ","), roleList(id.Roles), tok.ExpiresAt.Local().Format(time.RFC3339))
	return nil
}

// mintedIdentity is the identity of --user or --service. A service's
// subject is prefixed so it never shares a key with a person's.
func mintedIdentity(f issueFlags) (identity.Identity, error) {
	var id identity.Identity
	switch {
	case (f.user == "") == (f.service == ""):
		return id, errors.New("name the identity with exactly one of --user NAME or --service NAME")
	case f.user != "":
		id = identity.Identity{Subject: f.user, Name: f.user, Source: identity.SourceLocal}
	default:
		id = identity.Identity{Subject: "service:" + f.service, Name: f.service, Source: identity.SourceService}
	}
	if strings.ContainsAny(id.Name, " \t\r\n|") {
		return id, fmt.Errorf("the name %q holds a space or '|'; use letters, digits, '.', '-', '_' or '@'", id.Name)
	}
	id.Issuer = identity.LocalIssuer
	// The operator vouches for the address; a verified email makes
	// separation of duties treat this identity and the person's OIDC login
	// as the same person, which only ever refuses more.
	id.Email, id.EmailVerified = f.email, f.email != ""
	for _, g := range f.groups {
		if g = strings.TrimSpace(g); g != "" {
			id.Groups = append(id.Groups, g)
		}
	}
	id.AuthTime = time.Now()
	return id, nil
}

func openStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	if err := cfg.EnsureDataDir(); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("open the store named in %s: %w", cfg.Path, err)
	}
	return st, nil
}

func tokenEvent(t identity.Token) api.TokenEvent {
	scopes := make([]string, len(t.Scopes))
	for i, s := range t.Scopes {
		scopes[i] = string(s)
	}
	return api.TokenEvent{TokenID: t.ID, Identity: t.Identity.Key(), Scopes: scopes, ExpiresAt: t.ExpiresAt, Via: "cli"}
}

func addAdminEvent(ctx context.Context, st store.Store, action string, detail any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	if err := st.AddAdminEvent(ctx, store.AdminEvent{Actor: operatorActor, Action: action, Detail: string(b)}); err != nil {
		return fmt.Errorf("record the admin event %s: %w", action, err)
	}
	return nil
}

func roleList(roles []identity.Role) string {
	if len(roles) == 0 {
		return "none"
	}
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}
