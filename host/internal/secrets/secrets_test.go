package secrets

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	b, err := NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Seal("-----BEGIN RSA PRIVATE KEY-----", "installation:jira1:private_key")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "PRIVATE") || !strings.HasPrefix(s, "v1:") {
		t.Fatalf("sealed value %q", s)
	}
	if p, err := b.Open(s, "installation:jira1:private_key"); err != nil || p != "-----BEGIN RSA PRIVATE KEY-----" {
		t.Fatalf("Open = %q, %v", p, err)
	}
	if _, err := b.Open(s, "installation:jira2:private_key"); !errors.Is(err, ErrOpen) {
		t.Errorf("opened for another row: %v", err)
	}
	other, _ := NewBox(append(make([]byte, 31), 1))
	if _, err := other.Open(s, "installation:jira1:private_key"); !errors.Is(err, ErrOpen) {
		t.Errorf("opened with another key: %v", err)
	}
	if _, err := b.Open("plaintext", "x"); !errors.Is(err, ErrOpen) {
		t.Errorf("plaintext opened: %v", err)
	}
	if s2, _ := b.Seal("same", "w"); s2 == s {
		t.Error("two seals are equal: nonce reuse")
	}
	if e, _ := b.Seal("", "w"); e != "" {
		t.Error("empty value sealed to something")
	}
}

func TestLoadCreatesKeyFileOnce(t *testing.T) {
	t.Setenv(EnvKey, "")
	path := filepath.Join(t.TempDir(), "sub", "secret.key")
	b1, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	s, _ := b1.Seal("x", "w")
	b2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := b2.Open(s, "w"); err != nil || p != "x" {
		t.Fatalf("second Load uses another key: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := Load(path); err == nil {
		t.Error("a world-readable key file was accepted")
	}
}

func TestLoadFromEnv(t *testing.T) {
	t.Setenv(EnvKey, base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if _, err := Load(filepath.Join(t.TempDir(), "unused")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvKey, base64.StdEncoding.EncodeToString(make([]byte, 16)))
	if _, err := Load(filepath.Join(t.TempDir(), "unused")); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}

// TestDeriveKey: a derived key is the same wherever the secret key is,
// and differs with the purpose, the salt and the secret key.
func TestDeriveKey(t *testing.T) {
	key := make([]byte, 32)
	a, _ := NewBox(key)
	b, _ := NewBox(append([]byte(nil), key...))
	other, _ := NewBox(append(make([]byte, 31), 1))
	base, err := a.DeriveKey("sessions", []byte("salt"))
	if err != nil || len(base) != 32 {
		t.Fatalf("DeriveKey = %x, %v", base, err)
	}
	same, _ := b.DeriveKey("sessions", []byte("salt"))
	if string(same) != string(base) {
		t.Error("two boxes with one key derive different keys")
	}
	for _, tt := range []struct {
		name    string
		box     *Box
		purpose string
		salt    string
	}{
		{"another purpose", a, "csrf", "salt"},
		{"another salt", a, "sessions", "pepper"},
		{"another secret key", other, "sessions", "salt"},
	} {
		k, err := tt.box.DeriveKey(tt.purpose, []byte(tt.salt))
		if err != nil || string(k) == string(base) || string(k) == string(key) {
			t.Errorf("%s: derived %x, %v; want a key of its own", tt.name, k, err)
		}
	}
}
