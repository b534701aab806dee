package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error codes. Clients branch on the code; people read the message.
const (
	CodeBadRequest      = "bad_request"
	CodeUnauthenticated = "unauthenticated"
	CodeForbidden       = "forbidden"
	CodeNotFound        = "not_found"
	CodeMethod          = "method_not_allowed"
	CodeTooLarge        = "request_too_large"
	CodeNotConfigured   = "not_configured"
	CodePending         = "authorization_pending"
	CodeUnavailable     = "unavailable"
	CodeInternal        = "internal"
)

// Error is the body of every error answer.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// ErrorBody is the JSON envelope: {"error": {...}}.
type ErrorBody struct {
	Error Error `json:"error"`
}

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// writeError answers with err; an error that is not an *Error is internal,
// and its text is logged, not sent (it may name internals).
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		s.log.ErrorContext(r.Context(), "api: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		e = errorf(http.StatusInternalServerError, CodeInternal,
			"the gateway failed to answer; try again, and if it persists ask your operator to check the gateway's log")
	}
	writeJSON(w, e.Status, ErrorBody{Error: *e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}
