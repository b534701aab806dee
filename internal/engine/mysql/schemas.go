package mysql

import (
	"fmt"
	"slices"
	"strings"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/sqlkind"
)

// Allowed schemas (config resources[].schemas). A client may use only
// these: the schema it names at connect, COM_INIT_DB, USE and every
// schema-qualified name in a parsed statement are checked. An empty list
// allows only the resource's database when it is set, and any schema when
// it is not. information_schema is always allowed: it is read-only and
// shows only what the upstream user may see anyway.
//
// Unqualified names resolve in the current schema, which can only be an
// allowed one. A statement the parser cannot read names no schemas here;
// it is Unknown and reviewed.

const verdictSchema = "schema_not_allowed"

// allowedSchemas returns the resource's list, nil meaning any.
func allowedSchemas(res *config.Resource) []string {
	if len(res.Schemas) > 0 {
		return res.Schemas
	}
	if res.Database != "" {
		return []string{res.Database}
	}
	return nil
}

// schemaRefusal says why a schema may not be used, "" when it may.
func schemaRefusal(res *config.Resource, names []string) string {
	allowed := allowedSchemas(res)
	if allowed == nil {
		return ""
	}
	for _, n := range names {
		if slices.Contains(allowed, n) || strings.EqualFold(n, "information_schema") {
			continue
		}
		return fmt.Sprintf("countersign: resource %s allows only the schemas %s; %q is not one of them (ask an admin to add it to the resource's schemas)",
			res.Name, strings.Join(allowed, ", "), n)
	}
	return ""
}

// statementSchemas collects the schemas a text's statements name.
func statementSchemas(stmts []sqlkind.MySQLStatement) []string {
	var out []string
	for _, s := range stmts {
		out = append(out, s.Schemas...)
	}
	return out
}
