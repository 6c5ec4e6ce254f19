package fakejira

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParsePublicKeyPEM reads an RSA public key from PEM, either PKIX
// ("PUBLIC KEY", what Jira's application link screen takes) or PKCS#1
// ("RSA PUBLIC KEY"). The block type is not trusted: files in the wild are
// often labelled wrongly, so both encodings are tried.
func ParsePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("fakejira: no PEM block in public key")
	}
	if k, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("fakejira: public key is %T, not RSA", k)
		}
		return rk, nil
	}
	k, err := x509.ParsePKCS1PublicKey(block.Bytes)
	if err != nil {
		return nil, errors.New("fakejira: not an RSA public key in PKIX or PKCS#1")
	}
	return k, nil
}
