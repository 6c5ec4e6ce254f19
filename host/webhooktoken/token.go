// Package webhooktoken mints and checks the secret token in an
// installation's webhook URL: an HS256 JWT whose "id" claim is the
// installation's external id, signed with that installation's webhook
// secret.
//
// Checking is in two steps because the key depends on the token: Peek reads
// the unverified id so the caller can find the installation, then Verify
// checks the signature with that installation's secret.
package webhooktoken

import (
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"
)

// MaxLen bounds the token before any parsing; a real one is ~150 bytes.
const MaxLen = 4096

// Reasons a token is refused, for logs and metrics. They are never sent to
// the caller beyond the HTTP status.
var (
	ErrEmpty        = errors.New("token is empty")
	ErrTooLong      = errors.New("token is too long")
	ErrMalformed    = errors.New("token is not a JWT")
	ErrAlgorithm    = errors.New("token algorithm is not HS256")
	ErrMissingID    = errors.New("token has no id claim")
	ErrBadSignature = errors.New("token signature does not verify")
)

type claims struct {
	ID string `json:"id"`
	jwt.RegisteredClaims
}

// Mint returns a token for an installation.
func Mint(externalID string, secret []byte) (string, error) {
	if externalID == "" || len(secret) == 0 {
		return "", errors.New("webhooktoken: external id and secret are required")
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims{ID: externalID}).SignedString(secret)
}

// Peek returns the unverified id claim of a well-formed HS256 token.
func Peek(token string) (string, error) {
	if err := precheck(token); err != nil {
		return "", err
	}
	var c claims
	t, _, err := jwt.NewParser().ParseUnverified(token, &c)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if t.Method.Alg() != jwt.SigningMethodHS256.Alg() {
		return "", fmt.Errorf("%w: %s", ErrAlgorithm, t.Method.Alg())
	}
	if c.ID == "" {
		return "", ErrMissingID
	}
	return c.ID, nil
}

// Verify checks the token's signature with secret (in constant time, inside
// the JWT library's HMAC comparison) and that its id is externalID.
func Verify(token, externalID string, secret []byte) error {
	if err := precheck(token); err != nil {
		return err
	}
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}))
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrBadSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	case err != nil:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if c.ID != externalID {
		return fmt.Errorf("%w: id %q is not %q", ErrBadSignature, c.ID, externalID)
	}
	return nil
}

func precheck(token string) error {
	switch {
	case token == "":
		return ErrEmpty
	case len(token) > MaxLen:
		return ErrTooLong
	}
	return nil
}
