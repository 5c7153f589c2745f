package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// The answer of a receiver: how much of its body an attempt reads (so
// that a kept-alive connection is reused after a short answer and a long
// one costs no more), and how much of that it keeps for people to read.
const (
	maxAnswerRead    = 64 << 10
	maxAnswerExcerpt = 1024
)

// dialFunc is net.Dialer.DialContext's shape.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// NewClient returns the HTTP client that delivers webhooks within g. Its
// transport dials only addresses g allows: at each new connection it
// resolves the URL's host itself (g.LookupIP), checks every address the
// name has with g.Check, refusing the dial if one is not allowed, and
// connects to the checked addresses in turn, never resolving twice, so
// that a name that answered a public address before and 127.0.0.1 now is
// refused on this attempt (DNS rebinding). It uses no proxy (a proxy would
// dial what was never checked) and follows no redirect: a 3xx is the
// attempt's answer, a failure (Standard Webhooks spec, "Delivery success
// and failure"). TLS certificates are verified, against the URL's host.
// Connections are kept alive, up to 64 idle ones per host.
//
// timeout bounds each request, from the dial to the end of reading its
// answer (http.Client.Timeout); 0 means none. The spec recommends 15 to
// 30 seconds ("Request timeouts").
func NewClient(g Guard, timeout time.Duration) *http.Client {
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	return newClient(g, timeout, d.DialContext)
}

// newClient is NewClient with the dial of a checked address given: tests
// take the dial of a public address to a local server.
func newClient(g Guard, timeout time.Duration, dial dialFunc) *http.Client {
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            g.dialContext(dial),
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// dialContext returns the transport's dial: addr is the URL's host (as
// net/http maps it to ASCII) and port. The host is read as CheckURL reads
// it (parseHost); a name is resolved once, all its addresses are checked,
// and dial connects to one of them by number.
func (g Guard) dialContext(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
		ip, isIP, err := parseHost(host)
		if err != nil {
			return nil, err
		}
		addrs := []netip.Addr{ip}
		if !isIP {
			addrs, err = g.lookup(ctx, host)
			if err != nil {
				return nil, err
			}
			if len(addrs) == 0 {
				return nil, fmt.Errorf("webhook: %s has no address", host)
			}
		}
		for _, a := range addrs {
			if err := g.Check(a); err != nil {
				if !isIP {
					return nil, fmt.Errorf("%s resolves to a refused address: %w", host, err)
				}
				return nil, err
			}
		}
		var errs []error
		for _, a := range addrs {
			c, err := dial(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		return nil, errors.Join(errs...)
	}
}

// Result is the outcome of one attempt (Send).
type Result struct {
	// Status is the receiver's HTTP status code, 0 when no answer came.
	Status int
	// Body is the start of the answer's body, at most 1,024 bytes of
	// valid UTF-8 (invalid bytes replaced by U+FFFD, cut before a rune
	// that would not fit), for people to read in the delivery log.
	Body string
	// Err is why no answer came: the address was refused (it wraps
	// ErrBlocked), the connection failed, the timeout or ctx ended the
	// attempt first. It is set exactly when Status is 0.
	Err error
}

// OK says whether the receiver took the delivery: it answered 200 to 299
// (Standard Webhooks spec, "Delivery success and failure"). A redirect is
// a failure.
func (r Result) OK() bool {
	return r.Status >= 200 && r.Status <= 299
}

// Send makes one attempt to deliver body to url with c (NewClient): a POST
// with the headers of Headers (msgID, the attempt's time ts, secrets). It
// reads at most 64 KiB of the answer and keeps an excerpt (Result.Body);
// an answer whose body breaks off still counts by its status. The
// attempt ends with ctx or c's timeout.
func Send(ctx context.Context, c *http.Client, url, msgID string, ts time.Time, body []byte, secrets []string) Result {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Result{Err: fmt.Errorf("webhook: %w", err)}
	}
	if err := Headers(req.Header, secrets, msgID, ts, body); err != nil {
		return Result{Err: err}
	}
	resp, err := c.Do(req)
	if err != nil {
		return Result{Err: err}
	}
	defer resp.Body.Close()
	// A read error leaves what was read: the status is the answer.
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerRead))
	return Result{Status: resp.StatusCode, Body: excerpt(data, maxAnswerExcerpt)}
}

// excerpt returns the start of b as valid UTF-8 of at most max bytes:
// each invalid byte becomes U+FFFD, and the text ends before the first
// rune that would not fit.
func excerpt(b []byte, max int) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if sb.Len()+utf8.RuneLen(r) > max {
			break
		}
		sb.WriteRune(r)
		b = b[size:]
	}
	return sb.String()
}
