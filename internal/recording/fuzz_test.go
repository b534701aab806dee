package recording_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/recording"
)

// VerifyExport reads files from anywhere: it must never panic.
func FuzzVerifyExport(f *testing.F) {
	st := newMemStore()
	seed := make([]byte, ed25519.SeedSize)
	key := ed25519.NewKeyFromSeed(seed)
	l, err := recording.Open(f.Context(), st, recording.Options{Key: key, Writer: "w-fuzz", CheckpointEvery: 2,
		Clock: func() time.Time { return time.Unix(1700000000, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		l.Append(f.Context(), recording.Event{Type: recording.TypeOperation, Data: i}).Wait(f.Context())
	}
	l.Close(f.Context())
	var buf bytes.Buffer
	if err := recording.Export(f.Context(), st, &buf, time.Time{}, time.Time{}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"kind":"checkpoint","writer":"w","seq":-1,"hash":""}` + "\n"))
	f.Add([]byte(`{"kind":"event","writer":"w","seq":9223372036854775807,"hash":"00","prev_hash":"00"}` + "\n"))
	pub := key.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := recording.VerifyExport(bytes.NewReader(b), pub)
		if err == nil {
			_ = rep.String()
		}
	})
}
