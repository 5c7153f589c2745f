package emailtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// TLSPair returns the TLS configurations of a server with a fresh
// self-signed certificate for 127.0.0.1, ::1 and localhost, and of a
// client that trusts it (and no other). Give the server's to several
// servers (IMAPOptions.ServerTLS, SMTPOptions.ServerTLS) so that one
// client configuration trusts them all.
func TLSPair(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	server = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	return server, &tls.Config{RootCAs: rootsOf(server)}
}

// selfSigned makes a certificate for 127.0.0.1, ::1 and localhost that is
// its own CA, valid from an hour ago for a day, with its ECDSA P-256 key
// and its parsed Leaf.
func selfSigned(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("emailtest: TLS key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatalf("emailtest: TLS serial: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "emailtest for " + t.Name()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("emailtest: TLS certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("emailtest: TLS certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// rootsOf returns a pool that trusts the (self-signed) certificates of a
// server's configuration, as made by TLSPair.
func rootsOf(server *tls.Config) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range server.Certificates {
		pool.AddCert(c.Leaf)
	}
	return pool
}
