package config_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/config"
)

// head is a valid file of 7 lines; cases append lines 8 and on to it.
const head = `identity:
  roles: {dba: [approver], dev: [creator], ops: [breakglass]}
resources:
  - name: pg
    type: postgres
    address: 127.0.0.1:5432
    username: app
`

// policy opens resources[0].policy at line 8; cases append from line 9.
const policy = head + "    policy:\n"

// masking opens resources[0].policy.masking at line 9; rules start at 10.
const masking = policy + "      masking:\n"

type badFile struct {
	name string
	yaml string
	env  map[string]string // "" values are unset
	want string            // the whole error text a person sees
}

var badFiles = []badFile{
	// The shape of the file.
	{"empty", "", nil, "countersign.yaml: is empty; start from examples/countersign.yaml"},
	{"only comments", "# nothing yet\n", nil, "countersign.yaml: is empty; start from examples/countersign.yaml"},
	{"not yaml", "listen:\n\tapi: x\n", nil, "countersign.yaml:2: not valid YAML: found character that cannot start any token"},
	{"two documents", head + "---\nstore: sqlite://x.db\n", nil, "countersign.yaml:8: holds a second YAML document (after ---); keep the whole configuration in one"},
	{"root list", "- a\n- b\n", nil, "countersign.yaml:1: must be a mapping of keys to values, not a list"},
	{"unknown top key", head + "listn: {api: 127.0.0.1:8443}\n", nil, "countersign.yaml:8: listn: unknown key (did you mean listen?)"},
	{"unknown key, no suggestion", head + "colour: red\n", nil, "countersign.yaml:8: colour: unknown key (known keys here: data_dir, identity, limits, listen, recording, resources, secrets, store, tls, webhooks)"},
	{"misspelt password_env", head + "    pasword_env: PG_PROD_PASSWORD\n", nil, "countersign.yaml:8: resources[0].pasword_env: unknown key (did you mean password_env?)"},
	{"key twice", head + "    username: other\n", nil, "countersign.yaml:8: resources[0].username: key is written twice (first on line 7); keep one"},
	{"list for mapping", "listen: [127.0.0.1:8443]\n", nil, "countersign.yaml:1: listen: must be a mapping of keys to values, not a list"},
	{"mapping for list", "resources: {name: pg}\n", nil, "countersign.yaml:1: resources: must be a list (write [a, b] or one \"- item\" per line), not a mapping"},
	{"scalar for list", policy + "      access: dev\n", nil, "countersign.yaml:9: resources[0].policy.access: must be a list (write [a, b] or one \"- item\" per line), not a value"},
	{"text for number", policy + "      review: {approvals: two}\n", nil, `countersign.yaml:9: resources[0].policy.review.approvals: must be a whole number, not "two"`},
	{"text for bool", head + "listen: {allow_plaintext_loopback: yes}\n", nil, `countersign.yaml:8: listen.allow_plaintext_loopback: must be true or false, not "yes"`},
	{"number for duration", policy + "      review: {wait_timeout: 600}\n", nil, `countersign.yaml:9: resources[0].policy.review.wait_timeout: must be a duration such as 90s, 10m, 4h or 400d, not "600"`},
	{"duration too long", head + "recording: {retention: 999999999d}\n", nil, "countersign.yaml:8: recording.retention: is too long; the longest duration is about 106751d"},
	{"merge of a scalar", "base: &b 1\nlisten:\n  <<: *b\n", nil, "countersign.yaml:1: base: unknown key (known keys here: data_dir, identity, limits, listen, recording, resources, secrets, store, tls, webhooks)\ncountersign.yaml:1: listen: a merge (<<) must name a mapping or a list of mappings"},

	// Secrets.
	{"inline password", head + "    password: hunter2\n", nil, "countersign.yaml:8: resources[0].password: secrets do not belong in the file; put it in an environment variable and name the variable with password_env"},
	{"inline client secret", "identity:\n  oidc:\n    issuer: https://idp.example.com\n    client_id: cs\n    client_secret: s3cret\n", nil, "countersign.yaml:5: identity.oidc.client_secret: secrets do not belong in the file; put it in an environment variable and name the variable with client_secret_env"},
	{"unset variable", head + "    password_env: PG_PROD_PASSWORD\n", map[string]string{"PG_PROD_PASSWORD": ""}, "countersign.yaml:8: resources[0].password_env: environment variable PG_PROD_PASSWORD is not set"},
	{"pasted secret", head + "    password_env: \"hunter2!\"\n", nil, "countersign.yaml:8: resources[0].password_env: must be the name of an environment variable (letters, digits and _) that holds the secret, not the secret itself"},
	{"short digest key", head + "secrets: {digest_key_env: CS_TEST_DIGEST}\n", map[string]string{"CS_TEST_DIGEST": "short"}, "countersign.yaml:8: secrets.digest_key_env: environment variable CS_TEST_DIGEST holds 5 bytes; use at least 32 random bytes (openssl rand -hex 32)"},
	{"inline webhook secret", head + "webhooks:\n  - url: https://hooks.example.com/x\n    secret: abc\n", nil, "countersign.yaml:10: webhooks[0].secret: secrets do not belong in the file; put it in an environment variable and name the variable with secret_env"},

	// Listeners, store, TLS.
	{"listen without port", head + "listen: {api: 127.0.0.1}\n", nil, `countersign.yaml:8: listen.api: must be host:port, like 127.0.0.1:5432, not "127.0.0.1"`},
	{"listen port twice", head + "listen: {api: 127.0.0.1:8443, postgres: 127.0.0.1:8443}\n", nil, "countersign.yaml:8: listen.postgres: uses the same address as listen.api; give each listener its own port"},
	{"store scheme", head + "store: mysql://db/cs\n", nil, "countersign.yaml:8: store: must start with sqlite:// (embedded, one gateway) or postgres:// (several replicas)"},
	{"store without file", head + "store: sqlite://\n", nil, "countersign.yaml:8: store: names no file; write sqlite://./countersign.db"},
	{"cert without key", head + "tls: {cert_file: /nonexistent/cert.pem}\n", nil, "countersign.yaml:8: tls: cert_file and key_file go together; set both, or neither to use the local CA made at first start\ncountersign.yaml:8: tls.cert_file: cannot read /nonexistent/cert.pem: no such file or directory"},

	// Identity.
	{"unknown role", "identity:\n  roles:\n    dba: [approvr]\n", nil, `countersign.yaml:3: identity.roles.dba[0]: must be one of creator, approver, auditor, admin, breakglass, not "approvr" (did you mean approver?)`},
	{"oidc without issuer", "identity:\n  oidc: {client_id: cs}\n", nil, "countersign.yaml:2: identity.oidc.issuer: is required: the URL of your identity provider, like https://idp.example.com"},
	{"oidc over http", "identity:\n  oidc:\n    issuer: http://idp.example.com\n    client_id: cs\n", nil, "countersign.yaml:3: identity.oidc.issuer: must use https; plain http is allowed only for a loopback host (localhost, 127.0.0.1, ::1)"},
	{"zero ttl", "identity:\n  api_token_ttl: 0s\n", nil, "countersign.yaml:2: identity.api_token_ttl: must be longer than 0"},

	// Resources.
	{"name twice", head + "  - name: pg\n    type: postgres\n    address: 127.0.0.1:5432\n    username: app\n", nil, "countersign.yaml:8: resources[1].name: pg is already the name of resources[0]; resource names must be unique"},
	{"bad name", "resources:\n  - name: PG_Prod\n    type: postgres\n    address: 127.0.0.1:5432\n    username: app\n", nil, `countersign.yaml:2: resources[0].name: must be lower-case letters, digits and '-' (at most 63, not starting or ending with '-'), like pg-prod; not "PG_Prod"`},
	{"kubernetes", "resources:\n  - name: k8s\n    type: kubernetes\n    address: 127.0.0.1:6443\n    username: x\n", nil, "countersign.yaml:3: resources[0].type: kubernetes resources are not supported yet; use postgres or mysql"},
	{"missing keys", "resources:\n  - name: pg\n", nil, "countersign.yaml:2: resources[0].type: is required: one of postgres, mysql\ncountersign.yaml:2: resources[0].address: is required: the upstream's host:port, like 127.0.0.1:5432\ncountersign.yaml:2: resources[0].username: is required: the upstream user the gateway logs in as"},
	{"address port", "resources:\n  - name: pg\n    type: postgres\n    address: db:0\n    username: app\n", nil, `countersign.yaml:4: resources[0].address: port must be a number from 1 to 65535, not "0"`},
	{"schemas on postgres", head + "    schemas: [app]\n", nil, "countersign.yaml:8: resources[0].schemas: only mysql resources have schemas; remove it, or use the upstream's own privileges"},
	{"schema twice", "resources:\n  - name: my\n    type: mysql\n    address: 127.0.0.1:3306\n    username: root\n    schemas: [app, \"\", app]\n", nil, "countersign.yaml:6: resources[0].schemas[1]: a schema name must not be empty\ncountersign.yaml:6: resources[0].schemas[2]: app is listed twice"},
	{"long mysql name", "resources:\n  - name: a-very-long-resource-name-for-mysql-1\n    type: mysql\n    address: 127.0.0.1:3306\n    username: root\n", nil, "countersign.yaml:2: resources[0].name: must be at most 32 characters for a mysql resource: MySQL clients send it as their user name"},
	{"upstream tls mode", head + "    tls: {mode: verify_full}\n", nil, `countersign.yaml:8: resources[0].tls.mode: must be one of disable, require, verify-full, not "verify_full" (did you mean verify-full?)`},

	// Review and grants.
	{"approvals zero", policy + "      review:\n        approvals: 0\n", nil, "countersign.yaml:10: resources[0].policy.review.approvals: must be >= 1"},
	{"bad kind", policy + "      review: {kinds: [writes], approvers: [dba]}\n", nil, `countersign.yaml:9: resources[0].policy.review.kinds[0]: must be one of read, write, schema, privilege, admin, unknown, not "writes" (did you mean write?)`},
	{"kinds without approvers", policy + "      review: {kinds: [write]}\n", nil, "countersign.yaml:9: resources[0].policy.review.approvers: is required when kinds are reviewed: list the groups whose members approve, like [dba-leads]"},
	{"approver group without role", policy + "      review:\n        kinds: [write]\n        approvers: [dev]\n", nil, "countersign.yaml:11: resources[0].policy.review.approvers[0]: group dev does not have the approver role in identity.roles, so its members could never approve; add approver to its roles there"},
	{"mode", policy + "      review: {mode: block}\n", nil, `countersign.yaml:9: resources[0].policy.review.mode: must be one of wait, reject, not "block"`},
	{"negative timeout", policy + "      review: {review_timeout: -1h}\n", nil, "countersign.yaml:9: resources[0].policy.review.review_timeout: must be longer than 0"},
	{"grant access", policy + "      grants: {allow: [read]}\n", nil, `countersign.yaml:9: resources[0].policy.grants.allow[0]: must be one of write, schema, privilege, admin, unmask, not "read"`},
	{"breakglass group", policy + "      breakglass: [dev]\n", nil, "countersign.yaml:9: resources[0].policy.breakglass[0]: group dev does not have the breakglass role in identity.roles, so its members could never break glass; add breakglass to its roles there"},

	// Masking.
	{"rule selects nothing", masking + "        - strategy: redact\n", nil, "countersign.yaml:10: resources[0].policy.masking[0]: selects nothing; set one of columns, column_regex or detectors"},
	{"rule selects twice", masking + "        - {columns: [a.b], detectors: [email], strategy: redact}\n", nil, "countersign.yaml:10: resources[0].policy.masking[0]: sets more than one of columns, column_regex and detectors; write one rule for each"},
	{"bad strategy", masking + "        - {columns: [a.b], strategy: scramble}\n", nil, `countersign.yaml:10: resources[0].policy.masking[0].strategy: must be one of redact, partial, hash, email, null, fixed, not "scramble"`},
	{"unquoted null strategy", masking + "        - {columns: [a.b], strategy: null}\n", nil, `countersign.yaml:10: resources[0].policy.masking[0].strategy: is empty; for the null strategy write strategy: "null" (quoted: unquoted null is YAML for no value)`},
	{"bad regex", masking + "        - {column_regex: \"ssn(\", strategy: redact}\n", nil, "countersign.yaml:10: resources[0].policy.masking[0].column_regex: is not a valid regular expression (Go RE2 syntax): error parsing regexp: missing closing ): `ssn(`"},
	{"bad column", masking + "        - {columns: [a.b.c.d], strategy: redact}\n", nil, `countersign.yaml:10: resources[0].policy.masking[0].columns[0]: must be column, table.column or schema.table.column (each part a name or *), not "a.b.c.d"`},
	{"unknown detector", masking + "        - {detectors: [emial], strategy: redact}\n", nil, `countersign.yaml:10: resources[0].policy.masking[0].detectors[0]: must be one of email, credit_card, us_ssn, iban, phone, ipv4, ipv6, jwt, aws_access_key, pem_private_key, api_token, not "emial" (did you mean email?)`},
	{"partial without keep", masking + "        - {columns: [a.b], strategy: partial}\n", nil, "countersign.yaml:10: resources[0].policy.masking[0]: strategy partial needs keep_first or keep_last (how many characters stay visible)"},
	{"fixed without text", masking + "        - {columns: [a.b], strategy: fixed}\n", nil, "countersign.yaml:10: resources[0].policy.masking[0]: strategy fixed needs fixed: the text that replaces each value"},
	{"hash without key", masking + "        - {columns: [a.b], strategy: hash}\n", nil, "countersign.yaml:10: resources[0].policy.masking[0]: strategy hash needs hash_key_env: the environment variable holding the hash key"},
	{"keep with redact", masking + "        - {columns: [a.b], strategy: redact, keep_last: 4}\n", nil, "countersign.yaml:10: resources[0].policy.masking[0]: keep_first and keep_last apply only to strategy partial"},
	{"filter", masking + "        - {columns: [a.b], strategy: redact, filter: block}\n", nil, `countersign.yaml:10: resources[0].policy.masking[0].filter: must be one of allow, deny, not "block"`},

	// Everything else.
	{"message limit", head + "limits: {max_message_bytes: 10}\n", nil, "countersign.yaml:8: limits.max_message_bytes: must be from 4096 to 1073741824 (1 GiB); the default is 67108864 (64 MiB)"},
	{"webhook over http", head + "webhooks: [{url: \"http://hooks.example.com/x\", format: teams}]\n", nil, "" +
		"countersign.yaml:8: webhooks[0].url: must use https; plain http is allowed only for a loopback host (localhost, 127.0.0.1, ::1)\n" +
		`countersign.yaml:8: webhooks[0].format: must be one of json, slack, not "teams"`},
	{"file sink without path", head + "recording: {sinks: [{type: file}]}\n", nil, "countersign.yaml:8: recording.sinks[0].path: is required for a file sink"},
	{"negative retention", head + "recording: {retention: -1h}\n", nil, "countersign.yaml:8: recording.retention: must not be negative; 0 keeps everything"},
	{"negative connect timeout", head + "    connect_timeout: -1s\n", nil, "countersign.yaml:8: resources[0].connect_timeout: must not be negative; leave it out for the default of 10s"},
	{"long connect timeout", head + "    connect_timeout: 1h\n", nil, "countersign.yaml:8: resources[0].connect_timeout: must be at most 5m0s"},
	{"too many result rows", head + "    record: {results: 5000}\n", nil, "countersign.yaml:8: resources[0].record.results: must be at most 1000 rows per result"},

	// Several problems: all reported, ordered by line.
	{"several", "store: redis://x\nresources:\n  - name: pg\n    type: postgress\n    address: 127.0.0.1:5432\n    username: app\n    policy: {review: {approvals: 0}}\n", nil, "" +
		"countersign.yaml:1: store: must start with sqlite:// (embedded, one gateway) or postgres:// (several replicas)\n" +
		"countersign.yaml:4: resources[0].type: must be one of postgres, mysql, not \"postgress\" (did you mean postgres?)\n" +
		"countersign.yaml:7: resources[0].policy.review.approvals: must be >= 1"},
}

// TestBadFiles is the table of files a person could write wrong, with the
// exact text they would see.
func TestBadFiles(t *testing.T) {
	for _, tc := range badFiles {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
				if v == "" {
					os.Unsetenv(k) // t.Setenv restores it afterwards
				}
			}
			c, err := config.Parse("countersign.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted: %+v", *c)
			}
			if err.Error() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", err, tc.want)
			}
			var errs config.Errors
			if !errors.As(err, &errs) || len(errs) != strings.Count(tc.want, "\n")+1 {
				t.Errorf("not an Errors of one *Error per line: %#v", err)
			}
		})
	}
}

// TestErrorFields checks that the parts of an error are there for a program
// to match, and that a secret written inline is never repeated.
func TestErrorFields(t *testing.T) {
	t.Parallel()
	_, err := config.Parse("/etc/countersign/countersign.yaml", []byte(head+"    password: hunter2\n"))
	var e *config.Error
	if !errors.As(err, &e) {
		t.Fatalf("no *config.Error in %v", err)
	}
	want := config.Error{File: "countersign.yaml", Line: 8, Key: "resources[0].password", Msg: e.Msg}
	if *e != want {
		t.Errorf("got %+v, want %+v", *e, want)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error repeats the secret: %v", err)
	}
}

// TestTooManyErrors checks that a file with an error on every line gets a
// bounded report.
func TestTooManyErrors(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("resources:\n")
	for range 500 {
		b.WriteString("  - {name: X}\n")
	}
	_, err := config.Parse("countersign.yaml", []byte(b.String()))
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 101 {
		t.Fatalf("%d errors", len(errs))
	}
	if last := errs[len(errs)-1]; last.Msg != "and 2399 more problems; fix the ones above first" {
		t.Errorf("last error = %v", last)
	}
}

// TestAliasBomb checks that aliases cannot make a small file expand into a
// billion values: resources x rules x columns, each 1000 aliases long.
func TestAliasBomb(t *testing.T) {
	t.Parallel()
	aliases := func(name string) string {
		return "[" + strings.TrimSuffix(strings.Repeat("*"+name+", ", 1000), ", ") + "]"
	}
	src := "x:\n  cols: &c a.b\n" +
		"  col1k: &k " + aliases("c") + "\n" +
		"  rule: &m {columns: *k, strategy: redact}\n" +
		"  rules: &ms " + aliases("m") + "\n" +
		"  res: &r {name: pg, type: postgres, address: \"h:1\", username: u, policy: {masking: *ms}}\n" +
		"resources: " + aliases("r") + "\n"
	_, err := config.Parse("countersign.yaml", []byte(src))
	want := "countersign.yaml:2: resources[0].policy.masking[199].columns[391]: the file expands to more than 200000 values (through aliases?); write it out plainly"
	if err == nil || err.Error() != want {
		t.Fatalf("got %v", err)
	}
}
