// Package config loads countersign.yaml: it decodes the file, fills in the
// defaults, reads the secrets named by *_env keys from the environment and
// validates every key.
//
// The contract: a *Config returned by Load or Parse is complete and valid.
// Every default is filled in, every relative path is absolute (resolved
// against the file's directory), every secret is in its `yaml:"-"` field, and
// no rule that could not be applied reaches the data path. Code that uses a
// Config does not check it again.
//
// It fails closed. Unknown keys, values of the wrong type, secrets written
// inline and environment variables that are named but unset are all errors;
// nothing is guessed or skipped. Every error is a *Error that names the file,
// the line and the key path (resources[0].policy.review.approvals), and all of
// a file's errors are returned together as Errors, one per line, ordered by
// line.
//
// YAML anchors, aliases and merge keys (<<) work as in YAML. Top-level keys
// starting with "x-" are ignored so they can hold anchored blocks (a shared
// policy, say); every other unknown key is an error.
//
// Errors never contain a secret's value: an inline secret is refused without
// echoing it, and a *_env value that does not look like a variable name (a
// pasted password, say) is refused without being repeated.
package config
