package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/countersign/countersign/internal/identity"
)

// mockoidc has no device authorization grant. deviceProvider adds one to
// it: the discovery document names a device endpoint, and its token
// endpoint answers the device_code grant with authorization_pending until
// the test "types the code", then with an ID token signed by the provider's
// own key (published in its real JWKS).
type deviceProvider struct {
	m        *mockoidc.MockOIDC
	approved atomic.Bool
	denied   atomic.Bool
	claims   jwt.MapClaims // extra ID token claims
	aud      string        // audience of the ID token; the client id if empty
}

const testDeviceCode = "device-code-1"

func startDeviceProvider(t *testing.T, dp *deviceProvider) {
	t.Helper()
	// The device endpoint shares the token endpoint's path (mockoidc routes
	// only its own paths through middleware), told apart by a query.
	dp.m = startProvider(t, func(m *mockoidc.MockOIDC) {
		_ = m.AddMiddleware(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == mockoidc.DiscoveryEndpoint:
					addDeviceEndpoint(w, r, next, m.TokenEndpoint()+"?device_authorization=1")
				case r.URL.Path == mockoidc.TokenEndpoint && r.URL.Query().Get("device_authorization") == "1":
					deviceAuthorization(w, r, m)
				case r.URL.Path == mockoidc.TokenEndpoint && r.FormValue("grant_type") == "urn:ietf:params:oauth:grant-type:device_code":
					dp.token(w, r, m)
				default:
					next.ServeHTTP(w, r)
				}
			})
		})
	})
}

func deviceAuthorization(w http.ResponseWriter, r *http.Request, m *mockoidc.MockOIDC) {
	if r.PostFormValue("client_id") != m.ClientID || r.PostFormValue("client_secret") != m.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code": testDeviceCode, "user_code": "WDJB-MJHT",
		"verification_uri": "https://idp.example/device", "expires_in": 600, "interval": 1,
	})
}

func addDeviceEndpoint(w http.ResponseWriter, r *http.Request, next http.Handler, deviceURL string) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	doc["device_authorization_endpoint"] = deviceURL
	writeJSON(w, http.StatusOK, doc)
}

func (dp *deviceProvider) token(w http.ResponseWriter, r *http.Request, m *mockoidc.MockOIDC) {
	if r.Form.Get("client_id") != m.ClientID || r.Form.Get("client_secret") != m.ClientSecret ||
		r.Form.Get("device_code") != testDeviceCode {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client"})
		return
	}
	switch {
	case dp.denied.Load():
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "access_denied"})
		return
	case !dp.approved.Load():
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "authorization_pending"})
		return
	}
	aud := dp.aud
	if aud == "" {
		aud = m.ClientID
	}
	now := time.Now()
	claims := jwt.MapClaims{"iss": m.Issuer(), "sub": "u-dana", "aud": aud,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range dp.claims {
		claims[k] = v
	}
	idToken, err := m.Keypair.SignJWT(claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": "at", "token_type": "Bearer", "id_token": idToken})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestDeviceLogin(t *testing.T) {
	t.Parallel()
	dp := &deviceProvider{claims: jwt.MapClaims{"email": "dana@example.com", "groups": []string{"engineers"}}}
	startDeviceProvider(t, dp)
	o := newOIDC(t, dp.m, nil)
	ctx := context.Background()

	da, err := o.DeviceStart(ctx)
	if err != nil {
		t.Fatalf("DeviceStart: %v", err)
	}
	if da.UserCode != "WDJB-MJHT" || da.VerificationURI == "" || da.Handle == "" || da.Interval != time.Second {
		t.Errorf("DeviceStart = %+v", da)
	}
	if _, done, err := o.DevicePoll(ctx, da.Handle); done || err != nil {
		t.Fatalf("poll before the person approved: done=%v err=%v, want pending", done, err)
	}
	dp.approved.Store(true)
	id, done, err := o.DevicePoll(ctx, da.Handle)
	if err != nil || !done {
		t.Fatalf("poll after approval: done=%v err=%v", done, err)
	}
	if id.Subject != "u-dana" || id.Email != "dana@example.com" || id.Source != identity.SourceOIDC ||
		!slices.Equal(id.Roles, []identity.Role{identity.RoleCreator}) {
		t.Errorf("identity = %+v", id)
	}
	if _, _, err := o.DevicePoll(ctx, da.Handle); !errors.Is(err, identity.ErrLoginState) {
		t.Errorf("poll after done: err = %v, want ErrLoginState (a handle is used once)", err)
	}
}

func TestDeviceLoginRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dp   *deviceProvider
		want string
	}{
		{"denied by the person", &deviceProvider{}, "denied"},
		{"ID token for another client", &deviceProvider{aud: "another-client"}, "audience"},
		{"expired ID token", &deviceProvider{claims: jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}}, "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			startDeviceProvider(t, tc.dp)
			o := newOIDC(t, tc.dp.m, nil)
			da, err := o.DeviceStart(context.Background())
			if err != nil {
				t.Fatalf("DeviceStart: %v", err)
			}
			if tc.want == "denied" {
				tc.dp.denied.Store(true)
			} else {
				tc.dp.approved.Store(true)
			}
			_, done, err := o.DevicePoll(context.Background(), da.Handle)
			if done || !errors.Is(err, identity.ErrLoginRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("done=%v err=%v, want ErrLoginRefused mentioning %q", done, err, tc.want)
			}
		})
	}
}

func TestDeviceLoginUnsupported(t *testing.T) {
	t.Parallel()
	m := startProvider(t, nil) // plain mockoidc: no device_authorization_endpoint
	o := newOIDC(t, m, nil)
	_, err := o.DeviceStart(context.Background())
	if !errors.Is(err, identity.ErrDeviceUnsupported) || !strings.Contains(err.Error(), "without --no-browser") {
		t.Errorf("err = %v, want ErrDeviceUnsupported saying what to do", err)
	}
	if _, _, err := o.DevicePoll(context.Background(), "no-such-handle"); !errors.Is(err, identity.ErrLoginState) {
		t.Errorf("unknown handle: err = %v, want ErrLoginState", err)
	}
}

// serveJWKS makes the provider publish kp's key set, whatever it signs with.
func serveJWKS(kp *mockoidc.Keypair) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != mockoidc.JWKSEndpoint {
				next.ServeHTTP(w, r)
				return
			}
			b, err := kp.JWKS()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
		})
	}
}

// forgedKeypair is an RSA key that is not the provider's.
func forgedKeypair(t *testing.T) *mockoidc.Keypair {
	t.Helper()
	kp, err := mockoidc.RandomKeypair(2048)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return kp
}
