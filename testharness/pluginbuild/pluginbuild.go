// Package pluginbuild builds the plugin's .wasm for tests, so that host
// tests and scenario tests run the real sandboxed plugin under plain
// `go test` without a separate build step.
package pluginbuild

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
)

// Package is the import path of the wasm adapter.
const Package = "github.com/jirasync/jirasync/plugin/cmd/jirasync-plugin"

var (
	once sync.Once
	path string
	err  error
)

// Path returns a built plugin: $JIRASYNC_PLUGIN when set (make test builds
// it once for every package), otherwise one this process builds into a
// shared folder under the system temp dir. Go's build cache makes the
// rebuild cheap; Build's rename makes concurrent test binaries safe.
func Path() (string, error) {
	once.Do(func() {
		if p := os.Getenv("JIRASYNC_PLUGIN"); p != "" {
			path, err = filepath.Abs(p)
			return
		}
		path = filepath.Join(os.TempDir(), "jirasync-plugin-build", "jirasync.wasm")
		err = Build(Package, path)
	})
	return path, err
}

// Build compiles a wasm adapter package (the plugin, or a test plugin) to
// out, the way the Makefile does.
func Build(pkg, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	// Build beside the target and rename: a reader never sees a half
	// written module, whoever else is building the same one.
	tmp, err := os.CreateTemp(filepath.Dir(out), ".build-*.wasm")
	if err != nil {
		return err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared",
		"-trimpath", "-o", tmp.Name(), pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, stderr.String())
	}
	return os.Rename(tmp.Name(), out)
}
