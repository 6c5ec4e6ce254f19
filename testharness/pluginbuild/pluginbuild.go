// Package pluginbuild builds the plugin's .wasm for tests, so that host
// tests and scenario tests run the real sandboxed plugin under plain
// `go test` without a separate build step.
package pluginbuild

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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
		path = Out("jirasync.wasm")
		err = Build(Package, path)
	})
	return path, err
}

// Out is where a test builds the module called name: a folder under the
// system temp dir of this checkout's own, named by a digest of the
// module's root. Two checkouts testing at once (a clone in CI beside a
// working tree) build different code under one name; a shared file would
// let one's test load the other's build between its build and its read.
func Out(name string) string {
	root, err := os.Getwd()
	if err == nil {
		for dir := root; ; dir = filepath.Dir(dir) {
			if _, statErr := os.Stat(filepath.Join(dir, "go.mod")); statErr == nil {
				root = dir
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	sum := sha256.Sum256([]byte(root))
	return filepath.Join(os.TempDir(), "jirasync-plugin-build", hex.EncodeToString(sum[:6]), name)
}

// CacheDir is the compilation cache tests share (wazero's, keyed by the
// module's content, so every checkout and process may use it alike).
func CacheDir() string {
	return filepath.Join(os.TempDir(), "jirasync-plugin-build", "wazero-cache")
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
