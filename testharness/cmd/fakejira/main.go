// Command fakejira runs the simulated Jira Server on loopback for manual
// testing against a locally running host, the whole install flow included:
//
//	go run ./testharness/cmd/fakejira -addr 127.0.0.1:8090 -version 9.12.2 \
//	    -users users.json -consumer-key K -public-key pub.pem
//
// Give the host the printed base URL and consumer key; it runs the OAuth
// dance against the printed endpoints, and the authorize page in your
// browser approves as the simulated admin. The webhook the host then
// registers uses Jira 9's API, or Jira 10's with -version 10.x. -token
// skips the dance by accepting a fixed access token as well.
//
// The first line on stdout is the base URL, the next ones the endpoints;
// every request is logged on stderr. It runs until interrupted. -users is a
// JSON array of users in Jira's field names ({"name", "key",
// "emailAddress", "displayName", "active"}; active defaults to true).
// -public-key is the consumer's RSA public key in PEM, PKIX or PKCS#1.
// -issues is a JSON array of issues ({"key", "id", "assignee", "status",
// "refuse_assign"}: the assignee's user name, a status id, 400 or 403),
// which the REST API reads, assigns and transitions; -echo fires the
// issue-updated webhook at the registered webhooks after every change to
// one, as a real Jira does.
package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/jirasync/jirasync/testharness/fakejira"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address (loopback only)")
	version := flag.String("version", "9.12.2", "Jira version: serverInfo reports it, and 10 or later offers Jira 10's webhook API instead of the old one")
	usersFile := flag.String("users", "", "JSON file with an array of users")
	issuesFile := flag.String("issues", "", "JSON file with an array of issues")
	echo := flag.Bool("echo", false, "fire the issue-updated webhook after every change to an issue")
	consumerKey := flag.String("consumer-key", "", "OAuth consumer key of the application link")
	publicKey := flag.String("public-key", "", "PEM file with the consumer's RSA public key")
	token := flag.String("token", "", "access token to accept for the consumer without the OAuth dance (optional)")
	tokenSecret := flag.String("token-secret", "", "secret of the access token (unused by RSA-SHA1, kept as Jira keeps it)")
	webhookPermission := flag.Bool("webhook-permission", true, "let the consumer register webhooks; false answers 403 as for a non-admin")
	debug := flag.Bool("debug", false, "also log OAuth diagnostics such as the computed signature base string")
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	o := options{addr: *addr, version: *version, usersFile: *usersFile, issuesFile: *issuesFile, echo: *echo, consumerKey: *consumerKey, publicKey: *publicKey,
		token: *token, tokenSecret: *tokenSecret, webhookPermission: *webhookPermission, debug: *debug}
	if err := run(o, os.Stdout); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "fakejira: ") { // the package's own errors say so already
			msg = "fakejira: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

type options struct {
	addr, version, usersFile string
	issuesFile               string
	consumerKey, publicKey   string
	token, tokenSecret       string
	webhookPermission, debug bool
	echo                     bool
}

func run(o options, stdout io.Writer) error {
	// Check the flags hang together before listening: a consumer without a
	// key, or a token without a consumer, would only show up later as a
	// confusing oauth_problem.
	if (o.consumerKey == "") != (o.publicKey == "") {
		return errors.New("-consumer-key and -public-key go together")
	}
	if o.token != "" && o.consumerKey == "" {
		return errors.New("-token needs -consumer-key")
	}
	users, err := readUsers(o.usersFile)
	if err != nil {
		return err
	}
	issues, err := readIssues(o.issuesFile)
	if err != nil {
		return err
	}
	var pub *rsa.PublicKey
	if o.publicKey != "" {
		pem, err := os.ReadFile(o.publicKey)
		if err != nil {
			return err
		}
		if pub, err = fakejira.ParsePublicKeyPEM(pem); err != nil {
			return fmt.Errorf("%s: %w", o.publicKey, err)
		}
	}

	level := slog.LevelInfo
	if o.debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := fakejira.Start(fakejira.Config{Addr: o.addr, Version: o.version, Logger: logger})
	if err != nil {
		return err
	}
	defer srv.Close()
	if pub != nil {
		srv.AddConsumer(o.consumerKey, pub)
		if o.token != "" {
			srv.AddAccessToken(o.consumerKey, o.token, o.tokenSecret)
		}
	}
	srv.SetWebhookPermission(o.webhookPermission)
	for _, u := range users {
		srv.AddUser(u)
	}
	for _, is := range issues {
		if err := srv.AddIssue(is); err != nil {
			return fmt.Errorf("%s: %w", o.issuesFile, err)
		}
	}
	srv.SetEcho(o.echo)

	printEndpoints(stdout, srv.URL(), o)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// printEndpoints tells the person at the terminal what to paste where. The
// base URL stays alone on the first line for scripts that read it.
func printEndpoints(w io.Writer, base string, o options) {
	// Start accepted the version, so its first number parses.
	major, _, _ := strings.Cut(o.version, ".")
	major, _, _ = strings.Cut(major, "-")
	webhooks := base + "/rest/webhooks/1.0/webhook"
	if n, _ := strconv.Atoi(major); n >= 10 {
		webhooks = base + "/rest/jira-webhook/1.0/webhooks"
	}
	fmt.Fprintln(w, base)
	fmt.Fprintf(w, "  Jira version     %s\n", o.version)
	if o.consumerKey != "" {
		fmt.Fprintf(w, "  consumer key     %s\n", o.consumerKey)
	} else {
		fmt.Fprintln(w, "  no consumer: every signed request is refused (consumer_key_unknown); see -consumer-key")
	}
	fmt.Fprintf(w, "  request token    %s/plugins/servlet/oauth/request-token\n", base)
	fmt.Fprintf(w, "  authorize        %s/plugins/servlet/oauth/authorize\n", base)
	fmt.Fprintf(w, "  access token     %s/plugins/servlet/oauth/access-token\n", base)
	fmt.Fprintf(w, "  webhooks         %s\n", webhooks)
	if o.token != "" {
		fmt.Fprintf(w, "  access token %q is accepted without the dance\n", o.token)
	}
}

// readUsers reads the users file. Unknown fields are errors so a typo such
// as "email" does not silently produce users without an address.
func readUsers(path string) ([]fakejira.User, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := readStrict[[]struct {
		Name         string `json:"name"`
		Key          string `json:"key"`
		EmailAddress string `json:"emailAddress"`
		DisplayName  string `json:"displayName"`
		Active       *bool  `json:"active"`
	}](path)
	if err != nil {
		return nil, err
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

// readIssues reads the issues file, refusing unknown fields as readUsers
// does. The simulated Jira checks the rest (key, status, assignee).
func readIssues(path string) ([]fakejira.Issue, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := readStrict[[]struct {
		Key          string `json:"key"`
		ID           string `json:"id"`
		Assignee     string `json:"assignee"`
		Status       string `json:"status"`
		RefuseAssign int    `json:"refuse_assign"`
	}](path)
	if err != nil {
		return nil, err
	}
	issues := make([]fakejira.Issue, 0, len(raw))
	for _, r := range raw {
		issues = append(issues, fakejira.Issue{Key: r.Key, ID: r.ID, Assignee: r.Assignee, Status: r.Status, RefuseAssign: r.RefuseAssign})
	}
	return issues, nil
}

// readStrict decodes a JSON file into a T, refusing unknown fields.
func readStrict[T any](path string) (T, error) {
	var v T
	data, err := os.ReadFile(path)
	if err != nil {
		return v, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
