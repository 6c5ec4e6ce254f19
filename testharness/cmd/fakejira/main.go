// Command fakejira runs the simulated Jira Server on loopback for manual
// testing against a locally running host:
//
//	go run ./testharness/cmd/fakejira -addr 127.0.0.1:8090 -version 9.12.2 \
//	    -users users.json -consumer-key K -public-key pub.pem -token T
//
// It prints its base URL on stdout, logs every request on stderr, and runs
// until interrupted. -users is a JSON array of users in Jira's field names
// ({"name", "key", "emailAddress", "displayName", "active"}; active defaults
// to true). -public-key is the consumer's RSA public key in PEM, PKIX or
// PKCS#1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/jirasync/jirasync/testharness/fakejira"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address (loopback only)")
	version := flag.String("version", "9.12.2", "Jira version reported by serverInfo")
	usersFile := flag.String("users", "", "JSON file with an array of users")
	consumerKey := flag.String("consumer-key", "", "OAuth consumer key of the application link")
	publicKey := flag.String("public-key", "", "PEM file with the consumer's RSA public key")
	token := flag.String("token", "", "access token to accept for the consumer")
	tokenSecret := flag.String("token-secret", "", "secret of the access token (unused by RSA-SHA1, kept as Jira keeps it)")
	debug := flag.Bool("debug", false, "also log OAuth diagnostics such as the computed signature base string")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*addr, *version, *usersFile, *consumerKey, *publicKey, *token, *tokenSecret, *debug); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "fakejira: ") { // the package's own errors say so already
			msg = "fakejira: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

func run(addr, version, usersFile, consumerKey, publicKey, token, tokenSecret string, debug bool) error {
	// Check the flags hang together before listening: a consumer without a
	// key, or a token without a consumer, would only show up later as a
	// confusing oauth_problem.
	if (consumerKey == "") != (publicKey == "") {
		return errors.New("-consumer-key and -public-key go together")
	}
	if token != "" && consumerKey == "" {
		return errors.New("-token needs -consumer-key")
	}
	users, err := readUsers(usersFile)
	if err != nil {
		return err
	}

	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := fakejira.Start(fakejira.Config{Addr: addr, Version: version, Logger: logger})
	if err != nil {
		return err
	}
	defer srv.Close()
	if consumerKey != "" {
		pem, err := os.ReadFile(publicKey)
		if err != nil {
			return err
		}
		pub, err := fakejira.ParsePublicKeyPEM(pem)
		if err != nil {
			return fmt.Errorf("%s: %w", publicKey, err)
		}
		srv.AddConsumer(consumerKey, pub)
		if token != "" {
			srv.AddAccessToken(consumerKey, token, tokenSecret)
		}
	}
	for _, u := range users {
		srv.AddUser(u)
	}

	fmt.Println(srv.URL())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// readUsers reads the users file. Unknown fields are errors so a typo such
// as "email" does not silently produce users without an address.
func readUsers(path string) ([]fakejira.User, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw []struct {
		Name         string `json:"name"`
		Key          string `json:"key"`
		EmailAddress string `json:"emailAddress"`
		DisplayName  string `json:"displayName"`
		Active       *bool  `json:"active"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	users := make([]fakejira.User, 0, len(raw))
	for i, r := range raw {
		if r.Name == "" {
			return nil, fmt.Errorf("%s: user %d has no name", path, i+1)
		}
		users = append(users, fakejira.User{Name: r.Name, Key: r.Key, EmailAddress: r.EmailAddress,
			DisplayName: r.DisplayName, Active: r.Active == nil || *r.Active})
	}
	return users, nil
}
