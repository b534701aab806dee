package config

import "time"

// Config is the whole countersign.yaml. Load fills defaults and validates it;
// a *Config that Load returned is valid.
type Config struct {
	// Path is the file it was loaded from; paths in it are relative to its dir.
	Path   string `yaml:"-"`
	Listen Listen `yaml:"listen"`
	Store  string `yaml:"store"` // sqlite://./countersign.db (default) or postgres://...
	// DataDir holds what the gateway makes at first start (local CA, keys).
	// Default: the SQLite file's directory, else the config file's.
	DataDir   string     `yaml:"data_dir"`
	TLS       TLS        `yaml:"tls"`
	Identity  Identity   `yaml:"identity"`
	Resources []Resource `yaml:"resources"`
	Recording Recording  `yaml:"recording"`
	Secrets   Secrets    `yaml:"secrets"`
	Webhooks  []Webhook  `yaml:"webhooks"`
	Limits    Limits     `yaml:"limits"`
}

// Listen holds the listener addresses; an empty one is not started.
type Listen struct {
	API      string `yaml:"api"`
	Postgres string `yaml:"postgres"`
	MySQL    string `yaml:"mysql"`
	// AllowPlaintextLoopback lets clients on a loopback address send their
	// token without TLS. Off by default.
	AllowPlaintextLoopback bool `yaml:"allow_plaintext_loopback"`
	// Hostnames are added to the generated server certificate's SANs.
	Hostnames []string `yaml:"hostnames"`
}

// TLS names the gateway's certificate; with none, a local CA and a server
// certificate are made at first start beside the store (DataDir).
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	CAFile   string `yaml:"ca_file"` // the CA clients should trust, printed by `countersign ca`
}

// Identity is how people log in and which roles their groups give.
type Identity struct {
	OIDC          *OIDC               `yaml:"oidc"`
	Roles         map[string][]string `yaml:"roles"` // group -> roles
	ApproveMaxAge time.Duration       `yaml:"approve_max_age"`
	APITokenTTL   time.Duration       `yaml:"api_token_ttl"`      // default 12h
	ResourceTTL   time.Duration       `yaml:"resource_token_ttl"` // default 1h
	Local         Local               `yaml:"local"`
}

// OIDC configures the identity provider.
type OIDC struct {
	Issuer          string   `yaml:"issuer"`
	ClientID        string   `yaml:"client_id"`
	ClientSecretEnv string   `yaml:"client_secret_env"`
	GroupsClaim     string   `yaml:"groups_claim"` // default "groups"
	Scopes          []string `yaml:"scopes"`       // default openid, profile, email, groups-less
	// ClientSecret is read from ClientSecretEnv at load time; never from the file.
	ClientSecret string `yaml:"-"`
}

// Local configures operator-minted identities.
type Local struct {
	// MayApprove lets minted and service identities approve where OIDC is
	// configured. Without OIDC they always may (there is nothing fresher).
	MayApprove bool `yaml:"may_approve"`
}

// Resource is one configured target.
type Resource struct {
	Name        string      `yaml:"name"`
	Type        string      `yaml:"type"` // postgres | mysql | kubernetes
	Address     string      `yaml:"address"`
	Database    string      `yaml:"database"`
	Username    string      `yaml:"username"`
	PasswordEnv string      `yaml:"password_env"`
	UpstreamTLS UpstreamTLS `yaml:"tls"`
	// ConnectTimeout bounds connecting and logging in to the upstream
	// (default 10s); an unreachable upstream fails the client's login
	// after it.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	Policy         Policy        `yaml:"policy"`
	Record         RecordOpts    `yaml:"record"`
	// Password is read from PasswordEnv at load time; it never leaves the gateway.
	Password string `yaml:"-"`

	// Schemas are the schemas (MySQL databases) a mysql resource's clients
	// may use: COM_INIT_DB, USE and schema-qualified names are refused
	// outside them. Empty: only Database when it is set, else any.
	Schemas []string `yaml:"schemas"`
}

// DefaultConnectTimeout is a resource's connect_timeout when unset.
const DefaultConnectTimeout = 10 * time.Second

// UpstreamConnectTimeout is ConnectTimeout, or its default.
func (r *Resource) UpstreamConnectTimeout() time.Duration {
	if r.ConnectTimeout > 0 {
		return r.ConnectTimeout
	}
	return DefaultConnectTimeout
}

// UpstreamTLS is how the gateway connects to the upstream.
type UpstreamTLS struct {
	Mode       string `yaml:"mode"` // disable (default) | require | verify-full
	CAFile     string `yaml:"ca_file"`
	ServerName string `yaml:"server_name"`
	// ServerPublicKeyFile is a MySQL 8 upstream's RSA public key (PEM), for
	// caching_sha2_password full authentication without TLS: the password
	// is encrypted to this key. Without it (or TLS) that login is refused:
	// a key fetched in the clear could be anyone's.
	ServerPublicKeyFile string `yaml:"server_public_key_file"`
}

// RecordOpts tunes what the recording keeps for a resource.
type RecordOpts struct {
	Results int `yaml:"results"` // rows of each result kept, masked; 0 = none
}

// Policy is per resource.
type Policy struct {
	Access     []string   `yaml:"access"` // groups that may connect; none = nobody
	Review     Review     `yaml:"review"`
	Grants     Grants     `yaml:"grants"`
	Masking    []MaskRule `yaml:"masking"`
	Breakglass []string   `yaml:"breakglass"` // groups that may break glass
}

// Review says which kinds are held and who approves them.
type Review struct {
	Kinds         []string      `yaml:"kinds"`
	Approvers     []string      `yaml:"approvers"`
	Approvals     int           `yaml:"approvals"`      // default 1
	Mode          string        `yaml:"mode"`           // wait (default) | reject
	WaitTimeout   time.Duration `yaml:"wait_timeout"`   // default 10m
	ReviewTimeout time.Duration `yaml:"review_timeout"` // default 24h
	ValidFor      time.Duration `yaml:"valid_for"`      // default 1h
}

// Grants limits just-in-time access.
type Grants struct {
	MaxDuration time.Duration `yaml:"max_duration"` // default 4h
	Allow       []string      `yaml:"allow"`        // accesses that may be granted; default write, schema, unmask
}

// MaskRule is one masking rule; exactly one of Columns, ColumnRegex or
// Detectors is set.
type MaskRule struct {
	Columns     []string `yaml:"columns"`      // schema.table.column with * wildcards
	ColumnRegex string   `yaml:"column_regex"` // on column names
	Detectors   []string `yaml:"detectors"`
	Strategy    string   `yaml:"strategy"` // redact | partial | hash | email | null | fixed
	KeepFirst   int      `yaml:"keep_first"`
	KeepLast    int      `yaml:"keep_last"`
	Fixed       string   `yaml:"fixed"`
	HashKeyEnv  string   `yaml:"hash_key_env"`
	Filter      string   `yaml:"filter"` // allow (default) | deny
	Roles       []string `yaml:"roles"`  // roles this rule applies to; empty = everyone
	// HashKey is read from HashKeyEnv at load time.
	HashKey []byte `yaml:"-"`
}

// Recording configures the trail.
type Recording struct {
	SigningKeyFile     string        `yaml:"signing_key_file"`    // default: beside the store
	CheckpointEvery    int           `yaml:"checkpoint_every"`    // events; default 1000
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"` // default 10s
	Sinks              []Sink        `yaml:"sinks"`
	Retention          time.Duration `yaml:"retention"` // 0 = keep forever
}

// Sink streams committed events outside the store.
type Sink struct {
	Type string `yaml:"type"` // file | webhook
	Path string `yaml:"path"`
	URL  string `yaml:"url"`
}

// Secrets holds the deployment secrets, each from an environment variable or
// a file made at first start beside the store.
type Secrets struct {
	// DigestKeyEnv names the variable holding the HMAC key of operation
	// digests. Without it a random key is made at first start and kept in a
	// 0600 file beside the store.
	DigestKeyEnv string `yaml:"digest_key_env"`
	DigestKey    []byte `yaml:"-"`
}

// Webhook receives review, grant and break-glass notifications.
type Webhook struct {
	URL       string `yaml:"url"`
	SecretEnv string `yaml:"secret_env"`
	Format    string `yaml:"format"` // json (default) | slack
	Secret    []byte `yaml:"-"`
}

// Limits bounds what the gateway accepts from clients.
type Limits struct {
	MaxMessageBytes int           `yaml:"max_message_bytes"` // default 64 MiB
	StartupTimeout  time.Duration `yaml:"startup_timeout"`   // default 10s
	IdleTimeout     time.Duration `yaml:"idle_timeout"`      // default 0 (none)
}

// Resource returns the resource with the name, if configured.
func (c *Config) Resource(name string) (*Resource, bool) {
	for i := range c.Resources {
		if c.Resources[i].Name == name {
			return &c.Resources[i], true
		}
	}
	return nil, false
}
