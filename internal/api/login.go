package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/countersign/countersign/internal/identity"
)

type loginStartRequest struct {
	RedirectURI string `json:"redirect_uri"`
}

// LoginStart is the answer of POST /v1/login/start.
type LoginStart struct {
	AuthURL string `json:"auth_url"`
	State   string `json:"state"`
}

type loginFinishRequest struct {
	State string `json:"state"`
	Code  string `json:"code"`
}

// DeviceStart is the answer of POST /v1/login/device/start: what the
// person needs to finish a device login, and the handle to poll with.
type DeviceStart struct {
	UserCode                string    `json:"user_code"`
	VerificationURI         string    `json:"verification_uri"`
	VerificationURIComplete string    `json:"verification_uri_complete,omitempty"`
	Handle                  string    `json:"handle"`
	Interval                int       `json:"interval"` // seconds between polls
	ExpiresAt               time.Time `json:"expires_at"`
}

type devicePollRequest struct {
	Handle string `json:"handle"`
}

func noOIDC() error {
	return errorf(http.StatusNotFound, CodeNotConfigured,
		"this gateway has no OIDC login (identity.oidc is not configured); ask your operator for a token from 'countersign token issue'")
}

func (s *server) loginStart(w http.ResponseWriter, r *http.Request) {
	var req loginStartRequest
	err := s.needLogin()
	if err == nil {
		err = decode(w, r, &req)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.RedirectURI == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, CodeBadRequest,
			`send {"redirect_uri": "http://127.0.0.1:PORT/callback"} ('countersign login' does)`))
		return
	}
	authURL, state, err := s.Login.Start(r.Context(), req.RedirectURI)
	if err != nil {
		s.writeError(w, r, loginError(err, http.StatusBadRequest))
		return
	}
	writeJSON(w, http.StatusOK, LoginStart{AuthURL: authURL, State: state})
}

func (s *server) needLogin() error {
	if s.Login == nil {
		return noOIDC()
	}
	return nil
}

func (s *server) loginFinish(w http.ResponseWriter, r *http.Request) {
	var req loginFinishRequest
	err := s.needLogin()
	if err == nil {
		err = decode(w, r, &req)
	}
	if err == nil && (req.State == "" || req.Code == "") {
		err = errorf(http.StatusBadRequest, CodeBadRequest, "send the state and the code the identity provider redirected with")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := s.Login.Finish(r.Context(), req.State, req.Code)
	if err != nil {
		s.writeError(w, r, loginError(err, http.StatusUnauthorized))
		return
	}
	s.answerLogin(w, r, id, "login")
}

func (s *server) deviceStart(w http.ResponseWriter, r *http.Request) {
	if err := s.needLogin(); err != nil {
		s.writeError(w, r, err)
		return
	}
	da, err := s.Login.DeviceStart(r.Context())
	if err != nil {
		s.writeError(w, r, loginError(err, http.StatusBadGateway))
		return
	}
	writeJSON(w, http.StatusOK, DeviceStart{
		UserCode: da.UserCode, VerificationURI: da.VerificationURI, VerificationURIComplete: da.VerificationURIComplete,
		Handle: da.Handle, Interval: max(1, int(da.Interval/time.Second)), ExpiresAt: da.Expiry,
	})
}

// devicePoll asks once; while the person has not finished it answers 202
// with code authorization_pending, and the client polls again.
func (s *server) devicePoll(w http.ResponseWriter, r *http.Request) {
	var req devicePollRequest
	err := s.needLogin()
	if err == nil {
		err = decode(w, r, &req)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, done, err := s.Login.DevicePoll(r.Context(), req.Handle)
	switch {
	case err != nil:
		s.writeError(w, r, loginError(err, http.StatusUnauthorized))
	case !done:
		s.writeError(w, r, errorf(http.StatusAccepted, CodePending,
			"waiting for you to finish the login at the identity provider; poll again"))
	default:
		s.answerLogin(w, r, id, "device")
	}
}

// answerLogin issues the API token of a verified login. The identity
// carries the roles of this login's groups (identity.OIDC maps them).
func (s *server) answerLogin(w http.ResponseWriter, r *http.Request, id identity.Identity, via string) {
	ttl := s.Config.Identity.APITokenTTL
	if ttl <= 0 {
		ttl = defaultAPITTL
	}
	issued, err := s.issue(r.Context(), id, id, []identity.Scope{identity.ScopeAPI}, ttl, via)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, issued)
}

// loginError turns a refused login into an answer the person can act on.
// identity's messages say what was wrong (expired, wrong audience, replayed
// login) and hold no secret. Anything else keeps the given status.
func loginError(err error, status int) error {
	switch {
	case errors.Is(err, identity.ErrDeviceUnsupported):
		return errorf(http.StatusNotFound, CodeNotConfigured, "%s", err.Error())
	case errors.Is(err, identity.ErrLoginState), errors.Is(err, identity.ErrLoginRefused):
		return errorf(http.StatusUnauthorized, CodeUnauthenticated, "%s", err.Error())
	}
	code := CodeBadRequest
	if status == http.StatusBadGateway {
		code = CodeUnavailable
	}
	return errorf(status, code, "%s", err.Error())
}

// RoleTable converts the config's group -> role names table.
func RoleTable(t map[string][]string) map[string][]identity.Role {
	out := make(map[string][]identity.Role, len(t))
	for g, roles := range t {
		for _, r := range roles {
			out[g] = append(out[g], identity.Role(r))
		}
	}
	return out
}
