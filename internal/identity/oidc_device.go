package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// maxTokenResponse bounds what the gateway reads of a provider's token
// response.
const maxTokenResponse = 1 << 20

// DeviceAuth is a started device login (RFC 8628): the person opens
// VerificationURI and types UserCode; the caller polls with Handle every
// Interval until Expiry.
type DeviceAuth struct {
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string // with the code filled in, when the provider offers it
	// Handle names this login for DevicePoll. The provider's device code
	// stays inside the gateway.
	Handle   string
	Interval time.Duration
	Expiry   time.Time
}

type deviceState struct {
	deviceCode string
}

// DeviceStart begins a device authorization login, if the provider's
// discovery document names a device_authorization_endpoint.
func (o *OIDC) DeviceStart(ctx context.Context) (DeviceAuth, error) {
	if o.oauth.Endpoint.DeviceAuthURL == "" {
		return DeviceAuth{}, ErrDeviceUnsupported
	}
	handle, err := randomString()
	if err != nil {
		return DeviceAuth{}, fmt.Errorf("oidc: no randomness: %w", err)
	}
	var opts []oauth2.AuthCodeOption
	if o.cfg.ClientSecret != "" {
		// A confidential client authenticates here too (client_secret_post).
		opts = append(opts, oauth2.SetAuthURLParam("client_secret", o.cfg.ClientSecret))
	}
	da, err := o.oauth.DeviceAuth(ctxWithClient(ctx, o.client), opts...)
	if err != nil {
		return DeviceAuth{}, fmt.Errorf("%w: the identity provider refused to start a device login (%v)", ErrLoginRefused, err)
	}
	ttl := loginTTL
	if !da.Expiry.IsZero() {
		ttl = min(time.Until(da.Expiry), loginTTL)
	}
	interval := 5 * time.Second // RFC 8628's default
	if da.Interval > 0 && da.Interval < 60 {
		interval = time.Duration(da.Interval) * time.Second
	}
	now := o.cfg.Now()
	if err := o.devices.put(handle, deviceState{deviceCode: da.DeviceCode}, now, ttl); err != nil {
		return DeviceAuth{}, err
	}
	return DeviceAuth{
		UserCode:                da.UserCode,
		VerificationURI:         da.VerificationURI,
		VerificationURIComplete: da.VerificationURIComplete,
		Handle:                  handle,
		Interval:                interval,
		Expiry:                  now.Add(ttl),
	}, nil
}

// DevicePoll asks the provider once whether the device login is done. Not
// yet: done is false and err nil; poll again after the interval. Done: the
// ID token was verified (signature, issuer, audience, expiry; device tokens
// carry no nonce) and the handle is used up.
func (o *OIDC) DevicePoll(ctx context.Context, handle string) (Identity, bool, error) {
	ds, ok := o.devices.get(handle, o.cfg.Now())
	if !ok {
		return Identity{}, false, ErrLoginState
	}
	ctx = ctxWithClient(ctx, o.client)
	resp, err := o.pollToken(ctx, ds.deviceCode)
	if err != nil {
		return Identity{}, false, err
	}
	switch resp.Error {
	case "":
	case "authorization_pending", "slow_down":
		return Identity{}, false, nil
	case "access_denied":
		o.devices.drop(handle)
		return Identity{}, false, fmt.Errorf("%w: the login was denied at the identity provider", ErrLoginRefused)
	case "expired_token":
		o.devices.drop(handle)
		return Identity{}, false, fmt.Errorf("%w: the device code expired; run 'countersign login --no-browser' again", ErrLoginRefused)
	default:
		o.devices.drop(handle)
		return Identity{}, false, fmt.Errorf("%w: the identity provider answered %s (%s); run 'countersign login --no-browser' again",
			ErrLoginRefused, resp.Error, resp.ErrorDescription)
	}
	if _, ok := o.devices.take(handle, o.cfg.Now()); !ok {
		return Identity{}, false, ErrLoginState // another poll finished it
	}
	tok := (&oauth2.Token{AccessToken: resp.AccessToken}).WithExtra(map[string]any{"id_token": resp.IDToken})
	idt, err := o.verify(ctx, tok)
	if err != nil {
		return Identity{}, false, err
	}
	id, err := o.identityFrom(idt)
	if err != nil {
		return Identity{}, false, err
	}
	return id, true, nil
}

type deviceTokenResponse struct {
	AccessToken      string `json:"access_token"`
	IDToken          string `json:"id_token"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// pollToken makes one device_code token request. oauth2's
// DeviceAccessToken waits and loops inside; the gateway polls on behalf of
// a CLI that polls it, so it needs exactly one request.
func (o *OIDC) pollToken(ctx context.Context, deviceCode string) (deviceTokenResponse, error) {
	form := url.Values{
		"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {deviceCode},
		"client_id":   {o.cfg.ClientID},
	}
	basic := o.cfg.ClientSecret != "" && !slices.Contains(o.authMethods, "client_secret_post")
	if o.cfg.ClientSecret != "" && !basic {
		form.Set("client_secret", o.cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.oauth.Endpoint.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return deviceTokenResponse{}, fmt.Errorf("oidc: token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basic {
		req.SetBasicAuth(url.QueryEscape(o.cfg.ClientID), url.QueryEscape(o.cfg.ClientSecret))
	}
	res, err := o.client.Do(req)
	if err != nil {
		return deviceTokenResponse{}, fmt.Errorf("oidc: cannot reach the identity provider's token endpoint: %w; try again", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxTokenResponse))
	if err != nil {
		return deviceTokenResponse{}, fmt.Errorf("oidc: read the identity provider's answer: %w; try again", err)
	}
	var tr deviceTokenResponse
	if err := json.Unmarshal(body, &tr); err != nil || (tr.Error == "" && res.StatusCode != http.StatusOK) {
		return deviceTokenResponse{}, fmt.Errorf("%w: the identity provider's token endpoint answered HTTP %d with no usable body", ErrLoginRefused, res.StatusCode)
	}
	return tr, nil
}

func ctxWithClient(ctx context.Context, c *http.Client) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c)
}
