package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Errors of the OIDC login. Each wraps the detail of what went wrong.
var (
	// ErrLoginState: the state (or device handle) is unknown, expired or
	// already used. A replayed login lands here.
	ErrLoginState = errors.New("this login is unknown, expired or already finished (a login is used once and lasts 10 minutes): run 'countersign login' again")
	// ErrLoginRefused: the identity provider or its ID token was refused.
	ErrLoginRefused = errors.New("login refused")
	// ErrDeviceUnsupported: the provider has no device authorization
	// endpoint.
	ErrDeviceUnsupported = errors.New("the identity provider does not offer the device authorization grant; run 'countersign login' without --no-browser")
)

// OIDCConfig configures the login against one OpenID Connect provider.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// GroupsClaim names the ID token claim holding the groups (a string or
	// a list of strings). Default "groups".
	GroupsClaim string
	// Scopes asked for; "openid" is always added. Default openid, profile,
	// email.
	Scopes []string
	// Roles maps groups to roles (identity.roles).
	Roles map[string][]Role
	// RedirectURIs are exact redirect URIs allowed besides loopback ones
	// (http://127.0.0.1:PORT/..., http://[::1]:PORT/..., http://localhost:PORT/...),
	// e.g. the web UI's callback.
	RedirectURIs []string
	// MaxAge, when set, asks the provider to make the person log in again
	// if their provider session is older (OIDC max_age), and refuses an ID
	// token whose auth_time is older. Set it to approve_max_age so a login
	// is fresh enough to approve.
	MaxAge time.Duration
	// Now is the clock ID tokens and pending logins are judged by; the
	// store's clock where there is one. Default time.Now.
	Now func() time.Time
	// HTTPClient talks to the provider. Default: a client with a 30s
	// timeout.
	HTTPClient *http.Client
}

// OIDC logs people in with an OpenID Connect provider. The gateway holds
// the client secret, so it makes the code exchange and verifies the ID
// token; the CLI only carries the code from its loopback redirect.
//
// Started logins live in this process's memory (10 minutes, single use):
// with several replicas a login must finish on the replica that started it.
type OIDC struct {
	cfg         OIDCConfig
	client      *http.Client
	provider    *oidc.Provider
	verifier    *oidc.IDTokenVerifier
	oauth       oauth2.Config
	authMethods []string
	logins      *pending[loginState]
	devices     *pending[deviceState]
}

// loginState is what Start remembers for Finish.
type loginState struct {
	nonce       string
	verifier    string
	redirectURI string
}

// NewOIDC discovers the provider (its discovery document must name the
// configured issuer exactly) and prepares logins.
func NewOIDC(ctx context.Context, cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("oidc: identity.oidc.issuer and identity.oidc.client_id are required")
	}
	cfg = oidcDefaults(cfg)
	client := cfg.HTTPClient
	ctx = oidc.ClientContext(ctx, client)
	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: cannot use identity provider %s: %w; check identity.oidc.issuer", cfg.Issuer, err)
	}
	var meta struct {
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("oidc: read the discovery document of %s: %w", cfg.Issuer, err)
	}
	o := &OIDC{
		cfg:         cfg,
		client:      client,
		provider:    provider,
		verifier:    provider.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: cfg.Now}),
		authMethods: meta.AuthMethods,
		logins:      newPending[loginState](maxPending),
		devices:     newPending[deviceState](maxPending),
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     provider.Endpoint(),
			Scopes:       cfg.Scopes,
		},
	}
	return o, nil
}

func oidcDefaults(cfg OIDCConfig) OIDCConfig {
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	return cfg
}

// Start begins an authorization code login with PKCE (S256). It returns the
// provider URL to open in a browser and the state that Finish needs.
func (o *OIDC) Start(ctx context.Context, redirectURI string) (authURL, state string, err error) {
	if err := o.checkRedirect(redirectURI); err != nil {
		return "", "", err
	}
	state, err = randomString()
	if err != nil {
		return "", "", fmt.Errorf("oidc: no randomness: %w", err)
	}
	nonce, err := randomString()
	if err != nil {
		return "", "", fmt.Errorf("oidc: no randomness: %w", err)
	}
	ls := loginState{nonce: nonce, verifier: oauth2.GenerateVerifier(), redirectURI: redirectURI}
	if err := o.logins.put(state, ls, o.cfg.Now(), loginTTL); err != nil {
		return "", "", err
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(ls.verifier)}
	if o.cfg.MaxAge > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.Itoa(int(o.cfg.MaxAge/time.Second))))
	}
	return o.oauthFor(redirectURI).AuthCodeURL(state, opts...), state, nil
}

// Finish ends a login Start began: it consumes the state (a second Finish
// with it is refused), exchanges the code with the PKCE verifier, verifies
// the ID token (signature by the provider's JWKS, issuer, audience, expiry
// and the nonce this login issued) and returns the identity with roles
// mapped from its groups.
func (o *OIDC) Finish(ctx context.Context, state, code string) (Identity, error) {
	ls, ok := o.logins.take(state, o.cfg.Now())
	if !ok {
		return Identity{}, ErrLoginState
	}
	if code == "" {
		return Identity{}, fmt.Errorf("%w: the identity provider sent no code; run 'countersign login' again", ErrLoginRefused)
	}
	ctx = oidc.ClientContext(ctx, o.client)
	tok, err := o.oauthFor(ls.redirectURI).Exchange(ctx, code, oauth2.VerifierOption(ls.verifier))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: the identity provider refused the code exchange (%v); run 'countersign login' again", ErrLoginRefused, err)
	}
	idt, err := o.verify(ctx, tok)
	if err != nil {
		return Identity{}, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ls.nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w: the ID token's nonce is not the one this login issued (a replayed token?); run 'countersign login' again", ErrLoginRefused)
	}
	return o.identityFrom(idt)
}

// verify checks the ID token of a token response: everything but the
// nonce, which only the code flow has.
func (o *OIDC) verify(ctx context.Context, tok *oauth2.Token) (*oidc.IDToken, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("%w: the identity provider returned no ID token; check that identity.oidc.scopes include openid", ErrLoginRefused)
	}
	idt, err := o.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: the ID token failed verification: %s; run 'countersign login' again, and if it keeps failing check identity.oidc.issuer, client_id and the gateway's clock",
			ErrLoginRefused, describeVerifyError(err))
	}
	return idt, nil
}

func describeVerifyError(err error) string {
	var exp *oidc.TokenExpiredError
	if errors.As(err, &exp) {
		return "it expired at " + exp.Expiry.UTC().Format(time.RFC3339)
	}
	return err.Error()
}

// oauthFor is the oauth2 config with the redirect URI of one login.
func (o *OIDC) oauthFor(redirectURI string) *oauth2.Config {
	c := o.oauth
	c.RedirectURL = redirectURI
	return &c
}

// checkRedirect allows loopback redirects (the CLI's own listener) and the
// configured exact URIs; anything else could send a code to a stranger.
func (o *OIDC) checkRedirect(redirectURI string) error {
	if slices.Contains(o.cfg.RedirectURIs, redirectURI) {
		return nil
	}
	u, err := url.Parse(redirectURI)
	if err == nil && u.Scheme == "http" && u.User == nil && u.Port() != "" && isLoopbackHost(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("oidc: redirect URI %q is not allowed: use a loopback address (http://127.0.0.1:PORT/...) or add it to the gateway's allowed redirect URIs", redirectURI)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
