// Package policy compiles a resource's configured policy (config.Policy) into
// the questions the guard and the review service ask of it: may this identity
// connect, does this kind need review, who may approve and how many must,
// which mode, how long reviews and grants live, who may break glass.
//
// It fails closed. Compile refuses a policy that would leave a held
// operation unapprovable or that names an unknown kind. Access with no
// groups listed admits nobody. Kind unknown always counts as the most
// dangerous kind: if any kind is reviewed, unknown is reviewed too, whatever
// the configured list says, and an out-of-range Kind counts as unknown.
//
// policy holds no state and does no I/O; a *Policy is immutable and safe for
// concurrent use.
package policy
