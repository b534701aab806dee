package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// bin is the countersign binary under test, built once for the package.
var bin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "countersign-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: making a temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin = filepath.Join(dir, "countersign")
	if err := build(bin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// build compiles ./cmd/countersign from the module root (this file's parent).
func build(out string) error {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return fmt.Errorf("cannot locate the e2e package's source to find the module root")
	}
	root := filepath.Dir(filepath.Dir(self))
	cmd := exec.Command("go", "build", "-o", out, "./cmd/countersign")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building countersign failed: %v\n%s", err, b)
	}
	return nil
}
