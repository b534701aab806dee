// Package pki gives the gateway its TLS identity.
//
// With no certificate configured, LoadOrCreate makes a local certificate
// authority (ECDSA P-256, 10 years) and a server certificate (1 year; SANs
// localhost, 127.0.0.1, ::1 and the configured host names) at first start,
// kept beside the store:
//
//	ca.pem          the CA clients trust (`countersign ca` prints it)
//	ca-key.pem      0600
//	server.pem      the server certificate
//	server-key.pem  0600
//
// Later starts reuse them. The server certificate is made again, signed by
// the same CA, when it expires within 30 days or its SANs no longer match the
// configuration; the CA is made again only when it expires within 30 days
// (clients must then trust the new one). LoadFiles loads an operator's
// certificate, key and CA instead.
//
// It fails closed: a file that cannot be read or parsed, a key that does not
// match its certificate, or a server certificate not signed by the CA is an
// error and the gateway does not start; nothing here falls back to plaintext
// or to skipping verification.
package pki
