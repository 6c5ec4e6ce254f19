package jiraclient

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/dghubble/oauth1"
)

// TestHMACSignerRFC5849 checks the library's signer against the example
// of RFC 5849 §1.2 (HMAC-SHA1: Jira uses RSA-SHA1, but the RFC's only
// worked example is HMAC, and it pins the library's key and encoding).
func TestHMACSignerRFC5849(t *testing.T) {
	// The request of §1.2: GET http://photos.example.net/photos?file=vacation.jpg&size=original
	// with the token credentials of the example.
	base := "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03" +
		"%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096" +
		"%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
	s := &oauth1.HMACSigner{ConsumerSecret: "kd94hf93k423kf44"}
	got, err := s.Sign("pfkkdhi9sl3r4s00", base)
	if err != nil {
		t.Fatal(err)
	}
	if want := "tR3+Ty81lMeYAr/Fid0kMTYa/WM="; got != want {
		t.Errorf("HMAC-SHA1 signature = %s, want %s (RFC 5849 §1.2)", got, want)
	}
}

// TestRSASignerMatchesOpenSSL checks RSA-SHA1 signing (PKCS#1 v1.5, which is
// deterministic) against a signature made and verified by OpenSSL; see
// testdata/README.md.
func TestRSASignerMatchesOpenSSL(t *testing.T) {
	keyPEM, err := os.ReadFile("testdata/rsa-test-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile("testdata/base-string.txt")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/rsa-sha1-signature.b64")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParsePrivateKey(string(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&oauth1.RSASigner{PrivateKey: key}).Sign("", string(base))
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSpace(string(want)) {
		t.Fatalf("RSA-SHA1 signature differs from OpenSSL's:\n got %s\nwant %s", got, want)
	}
	sig, _ := base64.StdEncoding.DecodeString(got)
	sum := sha1.Sum(base)
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA1, sum[:], sig); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
}
