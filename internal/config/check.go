package config

import (
	"fmt"
	"strings"
)

// checker completes and validates a decoded Config. Its steps run in order:
// paths and defaults first (so validation sees the final values), then
// secrets, then the rules.
type checker struct {
	*decoder
	c         *Config
	dir       string // the config file's directory
	lookupEnv func(string) (string, bool)
}

func (k *checker) run() {
	k.storeAndDataDir()
	k.defaults()
	k.resolvePaths()
	k.secrets()
	k.validate()
}

// errf records a problem with the value at path, at the line where the file
// wrote it (or its nearest written parent, for a missing key). A path whose
// value already failed to decode gets no second error.
func (k *checker) errf(path, format string, args ...any) {
	for p := path; ; p = parent(p) {
		if k.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	k.errAt(k.lineOf(path), path, format, args...)
}

// has reports whether the file gave path a (non-null) value.
func (k *checker) has(path string) bool { return k.set[path] }

func (k *checker) lineOf(path string) int {
	for p := path; ; p = parent(p) {
		if l, ok := k.lines[p]; ok {
			return l
		}
		if p == "" {
			return 0
		}
	}
}

// parent strips the last element of a key path: "a.b[2]" -> "a.b" -> "a".
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	// A quoted map key may hold '.' or '[': step over the whole ["..."].
	if strings.HasSuffix(path, `"]`) {
		if j := strings.LastIndex(path, `["`); j >= 0 {
			return path[:j]
		}
	}
	return path[:i]
}

func at(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }
