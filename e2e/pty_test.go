package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// terminal is a program running under a pseudo-terminal, with everything it
// printed kept for expect.
type terminal struct {
	t    *testing.T
	cmd  *exec.Cmd
	f    *os.File
	mu   sync.Mutex
	out  strings.Builder
	mark int // expect searches output after this offset
	done chan struct{}
}

func startTerminal(t *testing.T, cmd *exec.Cmd) *terminal {
	t.Helper()
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatalf("starting %s under a pty: %v", cmd.Path, err)
	}
	term := &terminal{t: t, cmd: cmd, f: f, done: make(chan struct{})}
	go term.read()
	t.Cleanup(term.close)
	return term
}

func (term *terminal) read() {
	defer close(term.done)
	buf := make([]byte, 4096)
	for {
		n, err := term.f.Read(buf)
		term.mu.Lock()
		term.out.Write(buf[:n])
		term.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (term *terminal) close() {
	_ = term.cmd.Process.Kill()
	_ = term.cmd.Wait()
	_ = term.f.Close()
	if term.t.Failed() {
		term.t.Logf("terminal output:\n%s", term.output())
	}
}

func (term *terminal) output() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// send types s into the terminal.
func (term *terminal) send(s string) {
	term.t.Helper()
	if _, err := term.f.Write([]byte(s)); err != nil {
		term.t.Fatalf("typing %q into the terminal: %v", s, err)
	}
}

// expect waits (bounded) for re to match the output printed since the last
// match, and returns the submatches.
func (term *terminal) expect(re string, d time.Duration) []string {
	term.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(d)
	for {
		out := term.output()
		if loc := rx.FindStringSubmatchIndex(out[term.mark:]); loc != nil {
			m := rx.FindStringSubmatch(out[term.mark:])
			term.mark += loc[1]
			return m
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("gave up after %v waiting for %q in the terminal; since the last match it printed:\n%s", d, re, out[term.mark:])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
