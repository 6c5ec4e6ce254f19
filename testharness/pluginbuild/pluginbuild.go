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
// it once for every package), otherwise one built by this process into a
// temporary directory. Go's build cache makes repeated builds cheap.
func Path() (string, error) {
	once.Do(func() {
		if p := os.Getenv("JIRASYNC_PLUGIN"); p != "" {
			path, err = filepath.Abs(p)
			return
		}
		dir, e := os.MkdirTemp("", "jirasync-plugin-")
		if e != nil {
			err = e
			return
		}
		path = filepath.Join(dir, "jirasync.wasm")
		err = Build(Package, path)
	})
	return path, err
}

// Build compiles a wasm adapter package (the plugin, or a test plugin) to
// out, the way the Makefile does.
func Build(pkg, out string) error {
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-buildmode=c-shared",
		"-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building plugin: %v\n%s", err, stderr.String())
	}
	return nil
}
