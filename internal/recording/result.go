package recording

import (
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// Result is one result of an operation as the recording keeps it with the
// operation's outcome event, when its resource sets record.results: the
// column names and the first rows, masked by the engine before Append
// (like every value in the trail); a nil value is NULL.
type Result struct {
	Columns   []string    `json:"columns,omitempty"`
	Rows      [][]*string `json:"rows"`
	Truncated bool        `json:"truncated,omitempty"` // the result had more rows than were kept
}

// MaxResultValue bounds each kept value: exports and sinks hold an event
// per line, and a few rows must not make one huge.
const MaxResultValue = 1024

// ResultValue is how a kept value is written: text as it is, binary-format
// or non-UTF-8 bytes as \x hex, a value longer than MaxResultValue cut
// (at a character boundary) and followed by its length.
func ResultValue(v []byte, binary bool) string {
	n := len(v)
	cut := n > MaxResultValue
	if cut {
		v = v[:MaxResultValue]
		for !binary && len(v) > MaxResultValue-utf8.UTFMax && !utf8.Valid(v) {
			v = v[:len(v)-1] // a character cut at the limit
		}
	}
	s := string(v)
	if binary || !utf8.Valid(v) {
		s = `\x` + hex.EncodeToString(v)
	}
	if cut {
		s += fmt.Sprintf(" ... (%d bytes)", n)
	}
	return s
}
