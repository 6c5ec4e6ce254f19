package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// platformCmd runs `jirasync platform import FILE` and `jirasync platform
// export`: the built-in platform's data as one JSON file (docs/API.md).
func platformCmd(args []string, stdout io.Writer) error {
	if len(args) < 1 {
		return errors.New("platform: want import FILE or export")
	}
	fs := flag.NewFlagSet("platform "+args[0], flag.ExitOnError)
	var c common
	c.register(fs)
	fs.Parse(args[1:])
	if err := envDefaults(fs); err != nil {
		return err
	}
	switch args[0] {
	case "import":
		if fs.NArg() != 1 {
			return errors.New("platform import: want one FILE (- for standard input)")
		}
		return platformImport(c, fs.Arg(0), stdout)
	case "export":
		if fs.NArg() != 0 {
			return errors.New("platform export: takes no arguments; it writes to standard output")
		}
		st, err := openStoreOnly(c.db, c.keyFile())
		if err != nil {
			return err
		}
		defer st.Close()
		return st.Export(context.Background(), stdout)
	}
	return fmt.Errorf("platform: unknown command %q (want import or export)", args[0])
}

func platformImport(c common, file string, stdout io.Writer) error {
	in := os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	st, err := openStoreOnly(c.db, c.keyFile())
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	n, err := st.Import(context.Background(), in)
	if err != nil {
		return fmt.Errorf("%s: nothing imported: %w", file, err)
	}
	fmt.Fprintf(stdout, "imported %d organizations, %d projects, %d users, %d groups, %d links in %s\n",
		n.Organizations, n.Projects, n.Users, n.Groups, n.Links, time.Since(start).Round(time.Millisecond))
	return nil
}

// readPlatformToken reads the bearer token of a platform reached over
// HTTP from its file: a token is a secret, so it is never a flag's value
// (flags show in the process list).
func readPlatformToken(url, file string, demo bool) (string, error) {
	switch {
	case url == "" && file != "":
		return "", errors.New("-platform-token-file without -platform")
	case url == "":
		return "", nil
	case demo:
		return "", errors.New("-demo seeds the built-in platform; it does not go with -platform")
	case file == "":
		return "", errors.New("-platform needs -platform-token-file (JIRASYNC_PLATFORM_TOKEN_FILE)")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("platform token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("platform token file %s is empty", file)
	}
	return tok, nil
}
