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
