// Package identity says who acts: OIDC logins, countersign tokens, and the
// mapping of groups to roles.
//
// Contract:
//
//   - Identities are keyed by issuer + subject, never by email alone.
//     Same says two identities are one person (the key, or one verified
//     mailbox under two issuers, compared in Unicode compatibility form and
//     case folded); MaybeSame, for the refusals of segregation of duties
//     only, also takes an email one side vouches for and an operator-minted
//     identity named after the other's subject or email.
//   - OIDC (OIDC): authorization code with PKCE (S256), or the device
//     authorization grant where the provider offers it. The gateway holds
//     the client secret, makes the code exchange and verifies the ID token:
//     signature by the provider's JWKS, issuer, audience, expiry, and (code
//     flow) the nonce it issued. A state is used once and lasts 10 minutes;
//     started logins live in process memory, so with several replicas a
//     login finishes on the replica that started it. Groups come from the
//     configured claim at every login and map to roles through
//     identity.roles (RolesFor).
//   - Tokens (Tokens): "cst_" + 32 random bytes, shown once; the store keeps
//     only the SHA-256. Expiry and revocation are judged by the store's
//     clock at every use. An API token is no database password; a resource
//     token is the password of its one resource and cannot call the API.
//   - Approving (CanApproveFresh) needs a fresh OIDC login where OIDC is
//     configured; operator-minted identities cannot approve there unless
//     identity.local.may_approve.
//
// It fails closed: anything unexpected (an unknown token, a store that
// cannot answer, a claim of the wrong type, an unknown identity source) is
// a refusal with an error that says what to do. Secrets (tokens, codes,
// client secret) never appear in errors or logs.
//
// identity must not import store (store imports identity): TokenStore is
// the small part of store.Store it needs.
package identity
