package mysql

import (
	"context"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/engine/enginetest"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/recording"
)

// A client that disconnects while its operation is held is noticed at
// once: the wait's context ends (the guard withdraws it), the refusal is
// recorded and the session closes, without the review being decided.
func TestDisconnectDuringHoldWithdraws(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	withdrawn := make(chan struct{})
	ev.g.SetRule(func(text string) guard.Verdict {
		if !strings.Contains(text, "held") {
			return enginetest.Allow()
		}
		return guard.Verdict{Decision: guard.Hold, Code: "approval_pending", ReviewID: "r-gone",
			Wait: func(ctx context.Context) guard.Verdict {
				<-ctx.Done()
				close(withdrawn)
				return guard.Verdict{Code: "withdrawn", Message: "withdrawn"}
			}}
	})
	c := gatewayClient(t, ev)
	c.ResetSequence()
	if err := c.WritePacket(withHeader(append([]byte{comQuery}, "SELECT 'held'"...))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(ev.g.OpsOf("SELECT 'held'")) == 1 })
	c.Conn.Close()
	<-withdrawn // blocks forever (the test times out) if the socket is not watched
	waitFor(t, func() bool { return len(ev.rec.OfType(recording.TypeSessionClose)) == 1 })
	var denied bool
	for _, e := range ev.rec.OfType(recording.TypeOperation) {
		if d, ok := e.Data.(*recording.OperationData); ok {
			denied = denied || (d.Text == "SELECT 'held'" && d.Code == verdictClientGone && d.Decision == "deny")
		}
	}
	if !denied {
		t.Fatal("the withdrawn operation was not recorded as refused")
	}
}

// Bytes a client pipelines while it waits are kept for the next command.
func TestPipelinedCommandDuringHold(t *testing.T) {
	t.Parallel()
	ev := newEnv(t, nil)
	release := make(chan guard.Verdict, 1)
	ev.g.SetRule(enginetest.HoldIf("held", release))
	c := gatewayClient(t, ev)
	c.ResetSequence()
	if err := c.WritePacket(withHeader(append([]byte{comQuery}, "SELECT 'held'"...))); err != nil {
		t.Fatal(err)
	}
	c.ResetSequence()
	if err := c.WritePacket(withHeader(append([]byte{comQuery}, "SELECT 'next'"...))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(ev.g.OpsOf("SELECT 'held'")) == 1 })
	release <- enginetest.Allow()
	for _, want := range []string{"held", "next"} {
		c.Sequence = 1 // each answer starts its own sequence
		if got := readTextResult(t, c); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// readTextResult reads one single-column text result set and returns
// its first value.
func readTextResult(t *testing.T, c interface{ ReadPacket() ([]byte, error) }) string {
	t.Helper()
	var first string
	eofs := 0
	for i := 0; eofs < 2; i++ {
		p, err := c.ReadPacket()
		if err != nil || isErr(p) {
			t.Fatalf("%v %q", err, p)
		}
		switch {
		case isEOF(p):
			eofs++
		case eofs == 1 && first == "":
			vals, ok := parseTextRow(p, 1)
			if !ok {
				t.Fatalf("row %q", p)
			}
			first = string(vals[0])
		}
	}
	return first
}

// awaitRead's bounded wait is reused from read to read, and a context the
// limit (or the session's end) cancelled is never handed out again for a
// live session.
func TestBoundedWaitReuse(t *testing.T) {
	t.Parallel()
	parent, cancelParent := context.WithCancel(context.Background())
	var w boundedWait
	first := w.start(parent)
	w.stop()
	if again := w.start(parent); again != first || again.Err() != nil {
		t.Fatalf("a stopped wait was not reused: %v", again.Err())
	}
	w.stop()
	w.cancel() // as the limit does when it fires
	if fresh := w.start(parent); fresh == first || fresh.Err() != nil {
		t.Fatalf("a cancelled wait was handed out again: %v", fresh.Err())
	}
	w.stop()
	cancelParent()
	if ended := w.start(parent); ended.Err() == nil {
		t.Fatal("a wait of an ended session did not end")
	}
	w.stop()
}
