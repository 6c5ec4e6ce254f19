// Package secrets seals the host's secrets at rest (installation private
// keys, OAuth tokens, webhook secrets) with AES-256-GCM.
//
// The key comes from JIRASYNC_SECRET_KEY (32 bytes, base64) or from a key
// file created with 0600 permissions on first run. A sealed value names its
// format version and is bound to where it is stored (the additional data),
// so a ciphertext copied to another row or column does not open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnvKey is the environment variable holding the key.
const EnvKey = "JIRASYNC_SECRET_KEY"

const prefix = "v1:"

// Box seals and opens values with one key.
type Box struct {
	aead cipher.AEAD
	key  []byte // for DeriveKey
}

// NewBox returns a Box for a 32-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key is %d bytes, want 32 (AES-256)", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead, key: key}, nil
}

// DeriveKey returns a 32-byte key for one purpose, derived from the
// secret key with HKDF-SHA256: other keys (the admin sessions') come from
// it without being stored, the same on every host that shares the secret
// key, and a key of one purpose says nothing about the others or about
// the sealing key. salt binds the derived key to a further value.
func (b *Box) DeriveKey(purpose string, salt []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, b.key, salt, purpose, 32)
}

// Load returns the Box for the key in $JIRASYNC_SECRET_KEY, else in
// keyFile, creating keyFile with a fresh random key when it does not exist.
func Load(keyFile string) (*Box, error) {
	if v := strings.TrimSpace(os.Getenv(EnvKey)); v != "" {
		key, err := decodeKey(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvKey, err)
		}
		return NewBox(key)
	}
	v, _, err := ReadOrCreateFile(keyFile, func() (string, error) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(key), nil
	})
	if err != nil {
		return nil, err
	}
	key, err := decodeKey(v)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", keyFile, err)
	}
	return NewBox(key)
}

// ReadOrCreateFile returns the secret in path (surrounding white space
// trimmed), or, when there is no such file, writes one made by fresh to
// it, readable by its owner only, and reports that it did. An existing
// file that others may read is refused: the secret may have leaked.
func ReadOrCreateFile(path string, fresh func() (string, error)) (string, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		v, err := fresh()
		if err != nil {
			return "", false, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", false, err
		}
		// O_EXCL: two hosts starting at once must not each write one.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return ReadOrCreateFile(path, fresh)
			}
			return "", false, err
		}
		if _, err := f.WriteString(v + "\n"); err != nil {
			f.Close()
			return "", false, err
		}
		if err := f.Close(); err != nil {
			return "", false, err
		}
		return v, true, nil
	}
	if err != nil {
		return "", false, err
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return "", false, fmt.Errorf("%s is readable by others (mode %v); chmod 600 it", path, fi.Mode().Perm())
	}
	return strings.TrimSpace(string(b)), false, nil
}

func decodeKey(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != 32 {
				return nil, fmt.Errorf("key is %d bytes, want 32", len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("key is not base64")
}

// Seal encrypts plain, bound to where; "" stays "".
func (b *Box) Seal(plain, where string) (string, error) {
	if plain == "" {
		return "", nil
	}
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := b.aead.Seal(nonce, nonce, []byte(plain), []byte(where))
	return prefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// ErrOpen is returned for a value that does not open with this key.
var ErrOpen = errors.New("secret does not open: wrong key, tampered, or stored elsewhere")

// Open decrypts a value sealed for where; "" stays "".
func (b *Box) Open(sealed, where string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", fmt.Errorf("%w: not a sealed value", ErrOpen)
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", ErrOpen
	}
	plain, err := b.aead.Open(nil, raw[:b.aead.NonceSize()], raw[b.aead.NonceSize():], []byte(where))
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}
