// Command fakeplatform serves the simulated platform (testharness/fakeplatform)
// on an address, for trying `jirasync serve -platform` by hand:
//
//	go run ./testharness/cmd/fakeplatform -addr 127.0.0.1:8090 -token-file platform.token -data platform.json
//
// -data is a file in the format `jirasync platform import` reads
// (docs/API.md). The simulated platform keeps its data in memory; it
// logs every apply at -v. With -events-url (jirasync's /api/v1/events)
// and -events-token-file it sends jirasync an event after each change it
// applies, as a platform with two-way sync does.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/testharness/fakeplatform"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	tokenFile := flag.String("token-file", "", "file holding the bearer token callers must send")
	data := flag.String("data", "", "platform data file to start with (the import format)")
	verbose := flag.Bool("v", false, "log every call")
	eventsURL := flag.String("events-url", "", "jirasync's events endpoint (https://jirasync.example.com/api/v1/events); none: no events sent")
	eventsTokenFile := flag.String("events-token-file", "", "file holding the token to send events with (jirasync's platform or admin token)")
	flag.Parse()
	if err := run(*addr, *tokenFile, *data, *verbose, *eventsURL, *eventsTokenFile); err != nil {
		fmt.Fprintln(os.Stderr, "fakeplatform:", err)
		os.Exit(1)
	}
}

// readToken reads a token file, surrounding space trimmed.
func readToken(flagName, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%s is required", flagName)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return token, nil
}

func run(addr, tokenFile, dataFile string, verbose bool, eventsURL, eventsTokenFile string) error {
	token, err := readToken("-token-file", tokenFile)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	fp := fakeplatform.New(token, log)
	if dataFile != "" {
		raw, err := os.ReadFile(dataFile)
		if err != nil {
			return err
		}
		var d platform.Data
		if err := platform.DecodeObject(raw, &d); err != nil {
			return fmt.Errorf("%s: %w", dataFile, err)
		}
		if err := fp.Load(&d); err != nil {
			return fmt.Errorf("%s: %w", dataFile, err)
		}
	}
	if eventsURL != "" {
		eventsToken, err := readToken("-events-token-file", eventsTokenFile)
		if err != nil {
			return err
		}
		if err := fp.SendEvents(eventsURL, eventsToken); err != nil {
			return err
		}
		defer fp.Close()
	}
	log.Info("simulated platform serving", "addr", addr, "contract", "docs/PLATFORM.md")
	srv := &http.Server{Addr: addr, Handler: fp.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return srv.ListenAndServe()
}
