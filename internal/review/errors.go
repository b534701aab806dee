package review

import (
	"errors"
	"fmt"
)

// The kinds of refusal. Every error the Service returns from Create, Get,
// Approve, Reject and RevokeGrant matches exactly one of these (or
// ErrNotFound) with errors.Is, so a surface (the API's status codes, a chat
// bot's reply) branches on the kind and shows the message, which already
// says what to do.
var (
	// ErrRefused: who asks may not do this (segregation of duties: the
	// initiator, not an approver, a resource token, a stale login; or a
	// grant request outside the policy's limits).
	ErrRefused = errors.New("refused")
	// ErrConflict: the review is not in a state that allows this (already
	// decided or expired, the same person voted already, not an active
	// grant).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request itself is malformed (no initiator, no
	// digest, an unknown type or resource).
	ErrInvalid = errors.New("invalid review request")
	// ErrUnavailable: the store or the recording failed, so nothing was
	// changed; retrying may succeed.
	ErrUnavailable = errors.New("review store or recording unavailable")
)

// kindErr is an error of one kind whose text is its message alone: the
// kind is for errors.Is, the message for the person.
type kindErr struct {
	kind error
	err  error
}

func (e *kindErr) Error() string   { return e.err.Error() }
func (e *kindErr) Unwrap() []error { return []error{e.kind, e.err} }

func typed(kind, err error) error { return &kindErr{kind: kind, err: err} }

func refused(format string, args ...any) error {
	return typed(ErrRefused, fmt.Errorf(format, args...))
}

func conflict(format string, args ...any) error {
	return typed(ErrConflict, fmt.Errorf(format, args...))
}

func invalid(format string, args ...any) error {
	return typed(ErrInvalid, fmt.Errorf(format, args...))
}
