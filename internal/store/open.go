package store

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Open opens the store the URL names and brings its schema up to date:
//
//	sqlite://PATH                  SQLite file (relative paths stay relative:
//	                               the caller resolves them); its parent
//	                               directory is created with mode 0700
//	postgres://user:pass@host/db   PostgreSQL (also postgresql://)
//
// Any other scheme is an error that names the accepted forms.
func Open(ctx context.Context, url string) (Store, error) {
	switch {
	case strings.HasPrefix(url, sqlitePrefix):
		return OpenSQLite(ctx, strings.TrimPrefix(url, sqlitePrefix))
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return OpenPostgres(ctx, url)
	default:
		return nil, fmt.Errorf("store %q: unknown kind of store; use sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE", Describe(url))
	}
}

const sqlitePrefix = "sqlite://"

// Describe returns url with any password replaced by "***", for logs and
// error messages. What cannot be parsed loses everything that could be a
// credential: the user-info part, and any password=VALUE.
func Describe(raw string) string {
	if !strings.Contains(raw, "://") {
		return passwordParam.ReplaceAllString(raw, "${1}***")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.User == nil && strings.Contains(raw, "@")) {
		// url.Parse failed, or took a password holding '/' or '#' for
		// part of the host or path: redact by hand.
		return passwordParam.ReplaceAllString(redactUserinfo(raw), "${1}***")
	}
	const mark = "countersign-redacted"
	redacted := false
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), mark)
		redacted = true
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", mark)
		u.RawQuery = q.Encode()
		redacted = true
	}
	if !redacted {
		return raw
	}
	return strings.ReplaceAll(u.String(), mark, "***")
}

// passwordParam matches password=VALUE in a key=value string or a query.
var passwordParam = regexp.MustCompile(`(?i)(password=)('[^']*'|[^\s&]*)`)

// redactUserinfo cuts everything between "://" and the last '@': a
// credential we could not parse, so all of it goes.
func redactUserinfo(raw string) string {
	scheme, rest, _ := strings.Cut(raw, "://")
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return raw
	}
	return scheme + "://***@" + rest[at+1:]
}
