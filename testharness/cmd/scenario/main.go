// Command scenario runs scenario files through the real host, with the
// real wasm plugin, against the simulated Jira Server:
//
//	go run ./testharness/cmd/scenario [-v] [-platform builtin|http] PATH...
//
// PATH is a scenario file or a folder of them (*.json, recursively). It
// prints PASS or FAIL per scenario, then "N passed, M failed", and exits
// non-zero when any scenario fails or a file cannot be read.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jirasync/jirasync/testharness/pluginbuild"
	"github.com/jirasync/jirasync/testharness/scenario"
)

func main() {
	verbose := flag.Bool("v", false, "print each delivery's answer and the host's logs")
	engine := flag.String("engine", "wasm", "plugin engine: wasm (the product) or native")
	plugin := flag.String("plugin", "", "plugin .wasm (default: $JIRASYNC_PLUGIN, else built now)")
	cacheDir := flag.String("cache-dir", filepath.Join(os.TempDir(), "jirasync-scenario-cache"), "wazero compilation cache")
	postgres := flag.String("postgres", "", "run each scenario in a fresh schema of this postgres:// database (default: a SQLite file)")
	plat := flag.String("platform", "builtin", "where the platform's data lives: builtin (the host's tables) or http (the simulated platform over HTTP)")
	adapter := flag.String("adapter", "", "conformance kit: run the plugin-level scenarios through this adapter command (docs/CONFORMANCE.md)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: scenario [-v] [-engine wasm|native] [-plugin FILE] [-postgres URL] [-platform builtin|http] [-adapter CMD] PATH...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(*verbose, *engine, *plugin, *cacheDir, *postgres, *plat, *adapter, flag.Args()))
}

// scenarioRunner is the Go host's Runner or the conformance Kit.
type scenarioRunner interface {
	Run(context.Context, *scenario.Scenario) (scenario.Result, error)
}

func run(verbose bool, engine, plugin, cacheDir, postgres, plat, adapter string, paths []string) int {
	files, err := scenario.Expand(paths)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scenario:", err)
		return 1
	}
	if (engine == "wasm" || adapter != "") && plugin == "" {
		if plugin, err = pluginbuild.Path(); err != nil {
			fmt.Fprintln(os.Stderr, "scenario:", err)
			return 1
		}
	}
	var r scenarioRunner
	if adapter != "" {
		k := &scenario.Kit{Adapter: scenario.AdapterCommand(adapter), PluginPath: plugin, Log: os.Stderr}
		if verbose {
			k.Trace = os.Stdout
		}
		r = k
	} else {
		sr := &scenario.Runner{Engine: engine, PluginPath: plugin, CacheDir: cacheDir, Postgres: postgres, Platform: plat}
		if verbose {
			sr.Log, sr.Trace = os.Stderr, os.Stdout
		}
		r = sr
	}
	passed, failed, unreadable, skipped := 0, 0, 0, 0
	for _, f := range files {
		sc, err := scenario.Load(f)
		if err != nil {
			fmt.Printf("FAIL %s: cannot read scenario: %v\n", f, err)
			unreadable++
			continue
		}
		if adapter != "" && sc.Level != scenario.LevelPlugin {
			if verbose {
				fmt.Printf("SKIP %s: %s-level\n", sc.Name, sc.Level)
			}
			skipped++
			continue
		}
		res, err := r.Run(context.Background(), sc)
		switch {
		case err != nil:
			fmt.Printf("FAIL %s: %v\n", sc.Name, err)
			failed++
		case !res.Passed():
			fmt.Printf("FAIL %s: %s\n", sc.Name, joinFailures(res.Failures))
			failed++
		default:
			if verbose {
				fmt.Printf("PASS %s (%s)\n", sc.Name, res.Elapsed.Round(1e6))
			} else {
				fmt.Printf("PASS %s\n", sc.Name)
			}
			passed++
		}
	}
	db := "sqlite"
	if postgres != "" {
		db = "postgres"
	}
	if adapter != "" {
		fmt.Printf("%d passed, %d failed, %d HTTP-level skipped (adapter %s)\n", passed, failed+unreadable, skipped, adapter)
	} else {
		fmt.Printf("%d passed, %d failed (engine %s, database %s, platform %s)\n", passed, failed+unreadable, engine, db, plat)
	}
	if failed+unreadable > 0 {
		return 1
	}
	return 0
}

func joinFailures(fs []string) string {
	out := fs[0]
	for _, f := range fs[1:] {
		out += "; " + f
	}
	return out
}
