// Package cli is the countersign command line: the server (`serve`), the
// operator's tools that work on the config and store directly (`token
// issue`, `ca`, `token list|revoke --config`) and the client commands that
// call a gateway's API (`login`, `whoami`, `connect`, `token list|revoke`).
//
// Client commands find the gateway in --server, COUNTERSIGN_SERVER or the
// credentials file `login` writes (0600, under the user's config dir); the
// token in COUNTERSIGN_TOKEN or that file. They verify the gateway's
// certificate fully, against --ca-cert / COUNTERSIGN_CA_CERT, the CA saved
// at login, or the system roots; there is no switch to skip verification,
// and tokens are never sent over plain http.
//
// It fails closed: a config, store or certificate that cannot be loaded
// stops the command with an error saying what to fix; `serve` does not
// start with half its listeners. Commands hold no state in package
// variables: everything lives in an Env, so tests run many in one process.
package cli
