package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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
