package webhooktoken

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

const extID = "jira.example.com:jirasync"

var secret = []byte("s3cret")

func signed(t *testing.T, m jwt.SigningMethod, claims jwt.MapClaims, key []byte) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPeekAndVerify(t *testing.T) {
	good, err := Mint(extID, secret)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	none := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(`{"id":"`+extID+`"}`)) + "."
	tests := []struct {
		name       string
		token      string
		peekErr    error
		verifyErr  error
		wantPeekID string
	}{
		{name: "valid", token: good, wantPeekID: extID},
		{name: "empty", token: "", peekErr: ErrEmpty},
		{name: "too long", token: strings.Repeat("a", MaxLen+1), peekErr: ErrTooLong},
		{name: "not a jwt", token: "not-a-jwt", peekErr: ErrMalformed},
		{name: "two segments", token: "a.b", peekErr: ErrMalformed},
		{name: "alg none", token: none, peekErr: ErrAlgorithm},
		{name: "HS384", token: signed(t, jwt.SigningMethodHS384, jwt.MapClaims{"id": extID}, secret), peekErr: ErrAlgorithm},
		{name: "missing id", token: signed(t, jwt.SigningMethodHS256, jwt.MapClaims{"sub": extID}, secret), peekErr: ErrMissingID},
		{name: "id not a string", token: signed(t, jwt.SigningMethodHS256, jwt.MapClaims{"id": 7}, secret), peekErr: ErrMalformed},
		{name: "wrong secret", token: signed(t, jwt.SigningMethodHS256, jwt.MapClaims{"id": extID}, []byte("guess")),
			wantPeekID: extID, verifyErr: ErrBadSignature},
		{name: "tampered claims", token: tamper(good), wantPeekID: "jira.example.com:other", verifyErr: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := Peek(tt.token)
			if tt.peekErr != nil {
				if !errors.Is(err, tt.peekErr) {
					t.Fatalf("Peek error = %v, want %v", err, tt.peekErr)
				}
				if err := Verify(tt.token, extID, secret); err == nil {
					t.Fatal("Verify accepted a token Peek refused")
				}
				return
			}
			if err != nil || id != tt.wantPeekID {
				t.Fatalf("Peek = %q, %v; want %q", id, err, tt.wantPeekID)
			}
			err = Verify(tt.token, extID, secret)
			if tt.verifyErr == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tt.verifyErr != nil && !errors.Is(err, tt.verifyErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.verifyErr)
			}
		})
	}
}

// tamper swaps the claims of a token, keeping its signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"id":"jira.example.com:other"}`))
	return strings.Join(parts, ".")
}

func TestMintRefusesEmptyParts(t *testing.T) {
	if _, err := Mint("", secret); err == nil {
		t.Error("Mint with no external id succeeded")
	}
	if _, err := Mint(extID, nil); err == nil {
		t.Error("Mint with no secret succeeded")
	}
}

// FuzzPeek checks that the token parser never panics and that nothing it
// lets through verifies without the secret.
func FuzzPeek(f *testing.F) {
	good, _ := Mint(extID, secret)
	for _, s := range []string{good, "", "a.b.c", "not-a-jwt", tamper(good), "eyJhbGciOiJub25lIn0.e30."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := Peek(tok)
		if err != nil {
			return
		}
		if id == "" {
			t.Fatal("Peek returned an empty id without an error")
		}
		if tok != good && Verify(tok, id, []byte("another secret")) == nil {
			t.Fatalf("token %q verifies with a secret it was not signed with", tok)
		}
	})
}
