package config

import (
	"regexp"
	"strings"
)

func (k *checker) maskRule(p string, m *MaskRule) {
	k.maskSelector(p, m)
	if _, written := k.lines[p+".strategy"]; written && !k.has(p+".strategy") {
		// "strategy: null" reads as YAML's null, not as the strategy.
		k.errf(p+".strategy", "is empty; for the null strategy write strategy: \"null\" (quoted: unquoted null is YAML for no value)")
		return
	}
	if !k.oneOf(p+".strategy", m.Strategy, KnownStrategies) {
		return
	}
	k.maskOptions(p, m)
	k.oneOf(p+".filter", m.Filter, []string{"allow", "deny"})
	for i, r := range m.Roles {
		k.oneOf(at(p+".roles", i), r, knownRoles)
	}
}

// maskSelector checks that the rule picks its columns exactly one way, so
// which rule applies to a column is never ambiguous.
func (k *checker) maskSelector(p string, m *MaskRule) {
	n := 0
	for _, set := range []bool{k.has(p + ".columns"), k.has(p + ".column_regex"), k.has(p + ".detectors")} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		k.errf(p, "selects nothing; set one of columns, column_regex or detectors")
		return
	case n > 1:
		k.errf(p, "sets more than one of columns, column_regex and detectors; write one rule for each")
		return
	}
	switch {
	case k.has(p + ".columns"):
		if len(m.Columns) == 0 {
			k.errf(p+".columns", "is empty; list columns as schema.table.column, with * as a wildcard")
		}
		for i, c := range m.Columns {
			if !validColumnPattern(c) {
				k.errf(at(p+".columns", i), "must be column, table.column or schema.table.column (each part a name or *), not %q", clip(c))
			}
		}
	case k.has(p + ".column_regex"):
		if _, err := regexp.Compile(m.ColumnRegex); err != nil || m.ColumnRegex == "" {
			k.errf(p+".column_regex", "is not a valid regular expression (Go RE2 syntax): %s", regexpProblem(err))
		}
	default:
		if len(m.Detectors) == 0 {
			k.errf(p+".detectors", "is empty; list detectors such as [email, credit_card]")
		}
		for i, d := range m.Detectors {
			k.oneOf(at(p+".detectors", i), d, KnownDetectors)
		}
	}
}

func validColumnPattern(c string) bool {
	parts := strings.Split(c, ".")
	if len(parts) > 3 {
		return false
	}
	for _, part := range parts {
		if strings.TrimSpace(part) == "" {
			return false
		}
	}
	return true
}

func regexpProblem(err error) string {
	if err == nil {
		return "it is empty"
	}
	return err.Error()
}

// maskOptions checks that each strategy has what it needs and that no option
// is set that the strategy would ignore.
func (k *checker) maskOptions(p string, m *MaskRule) {
	if m.KeepFirst < 0 {
		k.errf(p+".keep_first", "must not be negative")
	}
	if m.KeepLast < 0 {
		k.errf(p+".keep_last", "must not be negative")
	}
	partial := k.has(p+".keep_first") || k.has(p+".keep_last")
	switch m.Strategy {
	case "partial":
		if m.KeepFirst <= 0 && m.KeepLast <= 0 {
			k.errf(p, "strategy partial needs keep_first or keep_last (how many characters stay visible)")
		}
	case "fixed":
		if !k.has(p + ".fixed") {
			k.errf(p, "strategy fixed needs fixed: the text that replaces each value")
		}
	case "hash":
		if !k.has(p + ".hash_key_env") {
			k.errf(p, "strategy hash needs hash_key_env: the environment variable holding the hash key")
		}
	}
	if partial && m.Strategy != "partial" {
		k.errf(p, "keep_first and keep_last apply only to strategy partial")
	}
	if k.has(p+".fixed") && m.Strategy != "fixed" {
		k.errf(p+".fixed", "applies only to strategy fixed")
	}
	if k.has(p+".hash_key_env") && m.Strategy != "hash" {
		k.errf(p+".hash_key_env", "applies only to strategy hash")
	}
}
