package recording_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
)

func exportAll(t *testing.T, st recording.Store, since, until time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := recording.Export(context.Background(), st, &buf, since, until); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExportVerifiesOffline(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	tr := writeTrail(t, st)
	pub := tr.key.Public().(ed25519.PublicKey)
	export := exportAll(t, st, time.Time{}, time.Time{})

	// Only the public key, as `audit pubkey` prints it, and the file.
	key, err := recording.ParsePublicKey(recording.PublicKeyString(pub))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := recording.VerifyExport(bytes.NewReader(export), key)
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Chains[0]; !rep.OK() || !c.Closed || c.LastSeq != 102 || c.Checkpoints != 6 {
		t.Fatalf("export: %+v\n%s", c, rep)
	}

	tests := []struct {
		name    string
		edit    func([]byte) []byte
		key     ed25519.PublicKey
		problem string
	}{
		{"signed by another key", nil, newKey(t).Public().(ed25519.PublicKey), "checkpoint at seq 20: the signature does not verify"},
		{"a byte changed", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"n":40,`), []byte(`"n":41,`), 1)
		}, pub, "event 42: hash mismatch"},
		{"a line deleted", func(b []byte) []byte { return deleteLine(b, `"seq":43,`) }, pub, "event 43 missing"},
		{"a checkpoint forged", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"kind":"checkpoint","writer":"`+tr.writer+`","seq":40`),
				[]byte(`"kind":"checkpoint","writer":"`+tr.writer+`","seq":41`), 1)
		}, pub, "checkpoint at seq 41: the signature does not verify"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(export)
			if tc.edit != nil {
				b = tc.edit(b)
			}
			rep, err := recording.VerifyExport(bytes.NewReader(b), tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || !strings.Contains(rep.Chains[0].Problem, tc.problem) {
				t.Fatalf("got %q; want %q", rep.Chains[0].Problem, tc.problem)
			}
		})
	}
}

func deleteLine(b []byte, marker string) []byte {
	var out []byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte(marker)) || !bytes.Contains(sc.Bytes(), []byte(`"kind":"event"`)) {
			out = append(append(out, sc.Bytes()...), '\n')
		}
	}
	return out
}

// A window export starts mid-chain; it verifies from its first prev_hash and
// every checkpoint inside must check.
func TestWindowExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newMemStore()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var now time.Time = base
	key := newKey(t)
	l := openLog(t, st, recording.Options{Key: key, CheckpointEvery: 10,
		Clock: func() time.Time { now = now.Add(time.Second); return now }})
	for i := range 50 {
		if err := l.Append(ctx, recording.Event{Type: recording.TypeOperation, Data: i}).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	l.Close(ctx)
	// Event seq s got time base + s seconds (checkpoints take clock ticks too,
	// so pick the window by the stored times).
	evs, _ := st.Events(ctx, l.Writer(), 1, 0)
	since, until := evs[14].Time, evs[40].Time // seq 15 .. 40
	rep, err := recording.VerifyExport(bytes.NewReader(exportAll(t, st, since, until)), key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Chains[0]
	if !rep.OK() || c.FirstSeq != 15 || c.LastSeq != 40 || c.Checkpoints != 3 || c.SignedSeq != 40 || len(rep.Notes) == 0 {
		t.Fatalf("window: %+v\n%s", c, rep)
	}
}

// A file sink's file is an export too: it verifies offline.
func TestWitnessFileVerifiesOffline(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	tr := writeTrail(t, st)
	f, err := os.Open(tr.witness)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := recording.VerifyExport(f, tr.key.Public().(ed25519.PublicKey))
	if err != nil || !rep.OK() || !rep.Chains[0].Closed {
		t.Fatalf("witness file: %v\n%s", err, rep)
	}
}

func TestVerifyExportRejectsGarbage(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"not json\n", `{"kind":"other"}` + "\n", `{"kind":"event","hash":"zz"}` + "\n"} {
		if _, err := recording.VerifyExport(strings.NewReader(in), newKey(t).Public().(ed25519.PublicKey)); err == nil {
			t.Errorf("%q was accepted", in)
		}
	}
}
