// Package api is countersign's HTTP JSON API, served over TLS by
// `countersign serve` and used by the CLI and the web UI.
//
// Every /v1 endpoint except login and /v1/info needs a bearer token with the
// api scope (identity.Tokens.AuthenticateAPI). A resource token, which is
// only a database password, is refused with a message that says so; a
// leaked database password can never call the API. /healthz, /readyz,
// /metrics and /v1/info are public: they reveal no identity or secret (the
// CA in /v1/info is public by nature).
//
// Errors are JSON, {"error":{"code":"...","message":"..."}}, with a message
// a person can act on; unknown paths and wrong methods answer the same way.
// Request bodies are limited to 1 MiB and must be JSON objects without
// unknown fields.
//
// It fails closed: a store that cannot answer refuses the request (503),
// access to a resource needs membership in one of its policy.access groups
// (none listed: nobody), and every token issued or revoked is recorded as an
// admin event before the answer is sent; if that record fails, the request
// fails (and a token it just issued is revoked again).
//
// See docs/api.md for each endpoint with an example.
package api
