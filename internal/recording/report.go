package recording

import (
	"fmt"
	"strings"
)

// Report is the result of a verification: one ChainReport per writer and
// what a witness comparison found.
type Report struct {
	Chains []ChainReport
	// Witness holds what comparing with a witness file found wrong.
	Witness []string
	// Notes are facts that are not failures (a window export's trusted
	// start, unreadable witness lines, ...).
	Notes []string
	// Strict makes unsigned events and chains without a closing checkpoint
	// failures (`audit verify --strict`).
	Strict bool
}

// ChainReport is what verification found in one writer's chain.
type ChainReport struct {
	Writer   string
	FirstSeq int64 // first event seen (1 unless a window export)
	LastSeq  int64 // last event verified
	Events   int64 // events verified (hash and link)
	// Checkpoints is the number of checkpoints whose signature and hash
	// checked; SignedSeq the seq of the last of them.
	Checkpoints int
	SignedSeq   int64
	// Unsigned is the number of verified events after SignedSeq: chained,
	// but not covered by a signature.
	Unsigned int64
	// Closed: a Final checkpoint covers the last event.
	Closed bool
	// Retained: events 1..Retained were deleted by retention, as a signed
	// retention mark says; verification started after them.
	Retained int64
	// Problem is the first broken place ("" when the chain is intact) and
	// BrokenSeq its sequence number.
	Problem   string
	BrokenSeq int64
}

// Failed says whether the chain fails verification.
func (c ChainReport) Failed(strict bool) bool {
	return c.Problem != "" || strict && (c.Unsigned > 0 || !c.Closed)
}

// OK says whether nothing failed.
func (r Report) OK() bool {
	if len(r.Witness) > 0 {
		return false
	}
	for _, c := range r.Chains {
		if c.Failed(r.Strict) {
			return false
		}
	}
	return true
}

// Problems lists every failure, one line each, naming writer and seq.
func (r Report) Problems() []string {
	var out []string
	for _, c := range r.Chains {
		if c.Problem != "" {
			out = append(out, fmt.Sprintf("writer %s: %s", c.Writer, c.Problem))
			continue
		}
		if r.Strict && c.Unsigned > 0 {
			out = append(out, fmt.Sprintf("writer %s: %s", c.Writer, c.unsignedText()))
		}
		if r.Strict && !c.Closed {
			out = append(out, fmt.Sprintf("writer %s: %s", c.Writer, c.unclosedText()))
		}
	}
	return append(out, r.Witness...)
}

// Warnings lists what is not verified but is not a failure without
// Strict: unsigned tails and unclosed chains.
func (r Report) Warnings() []string {
	var out []string
	for _, c := range r.Chains {
		if c.Problem != "" || r.Strict {
			continue
		}
		if c.Unsigned > 0 {
			out = append(out, fmt.Sprintf("writer %s: %s", c.Writer, c.unsignedText()))
		}
		if !c.Closed {
			out = append(out, fmt.Sprintf("writer %s: %s", c.Writer, c.unclosedText()))
		}
	}
	return out
}

func (c ChainReport) unsignedText() string {
	return fmt.Sprintf("%d events after the last checkpoint (seq %d-%d) are unsigned, not verified",
		c.Unsigned, c.LastSeq-c.Unsigned+1, c.LastSeq)
}

func (c ChainReport) unclosedText() string {
	return fmt.Sprintf("no closing checkpoint after seq %d (the process crashed, or is still running)", c.LastSeq)
}

// String is the report as `audit verify` prints it.
func (r Report) String() string {
	var b strings.Builder
	for _, c := range r.Chains {
		state := "ok"
		if c.Failed(r.Strict) {
			state = "FAILED"
		}
		fmt.Fprintf(&b, "writer %s: %s: events %d-%d, %d checkpoints, signed through %d\n",
			c.Writer, state, c.FirstSeq, c.LastSeq, c.Checkpoints, c.SignedSeq)
	}
	for _, p := range r.Problems() {
		fmt.Fprintf(&b, "FAILED: %s\n", p)
	}
	for _, w := range r.Warnings() {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if r.OK() {
		b.WriteString("trail verified\n")
	}
	return b.String()
}
