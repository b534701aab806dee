package config

// KnownDetectors names the value detectors a masking rule may list. The mask
// package implements each of them; a name outside this list is a config
// error, so a misspelt detector never silently masks nothing.
var KnownDetectors = []string{
	"email", "credit_card", "us_ssn", "iban", "phone", "ipv4", "ipv6",
	"jwt", "aws_access_key", "pem_private_key", "api_token",
}

// KnownStrategies names the masking strategies a rule may use.
var KnownStrategies = []string{"redact", "partial", "hash", "email", "null", "fixed"}

// knownRoles mirrors identity.KnownRoles (a test keeps them equal); config
// cannot import identity, which reads its settings from here.
var knownRoles = []string{"creator", "approver", "auditor", "admin", "breakglass"}

// KnownKinds names the operation kinds review.kinds may list: the names of
// sqlkind.Kind (a test keeps them equal). The list lives here so that
// loading a config does not depend on the SQL parsers.
var KnownKinds = []string{"read", "write", "schema", "privilege", "admin", "unknown"}

// grantAccesses are the kinds of access a grant may open.
var grantAccesses = []string{"write", "schema", "privilege", "admin", "unmask"}

// Defaults, as documented in DESIGN.md and examples/countersign.yaml.
const (
	DefaultStore           = "sqlite://./countersign.db"
	DefaultMaxMessageBytes = 64 << 20
)
