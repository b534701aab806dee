package guard

import "strings"

// maxCommentScan bounds how much leading text is searched for directive
// comments; a directive must come first, so a long scan buys nothing.
const maxCommentScan = 4096

// leadingComment finds a leading `/* key: value */` block comment (among
// the comments that open the text) and returns its value. Only comments
// before the first token count, so a directive cannot hide inside a string
// literal or later in the statement.
func leadingComment(text, key string) (string, bool) {
	if len(text) > maxCommentScan {
		text = text[:maxCommentScan]
	}
	rest := text
	for {
		rest = strings.TrimLeft(rest, " \t\r\n")
		if !strings.HasPrefix(rest, "/*") {
			return "", false
		}
		end := strings.Index(rest, "*/")
		if end < 0 {
			return "", false
		}
		body := strings.TrimSpace(rest[2:end])
		rest = rest[end+2:]
		k, v, ok := strings.Cut(body, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), key) {
			if v = strings.TrimSpace(v); v != "" {
				return v, true
			}
		}
	}
}
