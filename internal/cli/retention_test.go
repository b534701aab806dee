package cli

import (
	"context"
	"os"
	"strings"
	"testing"
)

// serveAt runs `serve --config path` until stop is called, which checks
// that it stopped cleanly.
func serveAt(t *testing.T, path string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	serving := make(chan *Server, 1)
	exited := make(chan int, 1)
	var logs syncBuffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &logs, Stderr: &logs, Getenv: func(string) string { return "" },
		ConfigDir: func() (string, error) { return t.TempDir(), nil }, OnServing: func(s *Server) { serving <- s }}
	go func() { exited <- Run(ctx, env, []string{"serve", "--config", path, "--log-level", "warn"}) }()
	select {
	case <-serving:
	case code := <-exited:
		cancel()
		t.Fatalf("serve exited with %d before serving: %s", code, logs.String())
	}
	return func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("serve stopped with exit code %d: %s", code, logs.String())
		}
	}
}

// TestServeAppliesRetention: with recording.retention set, serve deletes
// the segments older than it (here: a whole earlier chain, up to the
// Final checkpoint it keeps), and `audit verify` still passes, naming what
// retention deleted. The run is in the trail.
func TestServeAppliesRetention(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, surfacesConfig)
	serveAt(t, path)()
	keep := strings.Replace(surfacesConfig, "  checkpoint_every: 1\n", "  checkpoint_every: 1\n  retention: 1ns\n", 1)
	if err := os.WriteFile(path, []byte(keep), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := serveAt(t, path)
	op := &user{t: t, dir: t.TempDir(), vars: map[string]string{}}
	var out string
	for !strings.Contains(out, "were deleted by retention") { // the first run starts with serve
		out = op.must("audit", "verify", "--config", path)
	}
	stop()
	out = op.must("audit", "verify", "--config", path, "--strict")
	if !strings.Contains(out, "trail verified") || !strings.Contains(out, "all its events (1-") {
		t.Fatalf("audit verify after retention:\n%s", out)
	}
	if export := op.must("audit", "export", "--config", path); !strings.Contains(export, `"type":"retention"`) {
		t.Fatalf("no retention event in the trail:\n%s", export)
	}
}
