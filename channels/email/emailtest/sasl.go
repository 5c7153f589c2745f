package emailtest

import (
	"strings"

	"github.com/emersion/go-sasl"
)

// xoauth2 is the name of Google's and Microsoft's XOAUTH2 mechanism,
// which go-sasl does not have.
const xoauth2 = "XOAUTH2"

// tokenServer returns the server side of the bearer token mechanism mech,
// XOAUTH2 or OAUTHBEARER (RFC 7628), taking the token when check says so;
// nil for another mechanism. refused is the error that ends an XOAUTH2
// exchange whose token was refused, in the protocol's words (IMAP's NO
// [AUTHENTICATIONFAILED], SMTP's 535).
func tokenServer(mech string, check func(user, token string) bool, refused error) sasl.Server {
	switch mech {
	case xoauth2:
		return &xoauth2Server{check: check, refusal: refused}
	case sasl.OAuthBearer:
		return sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if !check(o.Username, o.Token) {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			return nil
		})
	}
	return nil
}

// xoauth2Server is the server side of XOAUTH2
// (https://developers.google.com/gmail/imap/xoauth2-protocol): the
// client's one response is "user=U\x01auth=Bearer T\x01\x01"; a refusal
// is a challenge holding a JSON error, as Gmail sends it, and after the
// client's empty answer to it the error refusal.
type xoauth2Server struct {
	check   func(user, token string) bool
	refusal error
	refused bool
}

func (x *xoauth2Server) Next(response []byte) ([]byte, bool, error) {
	if x.refused {
		return nil, true, x.refusal
	}
	if response == nil {
		// No initial response (no SASL-IR): an empty challenge asks
		// for it.
		return []byte{}, false, nil
	}
	var user, token string
	for part := range strings.SplitSeq(string(response), "\x01") {
		if v, ok := strings.CutPrefix(part, "user="); ok {
			user = v
		} else if v, ok := strings.CutPrefix(part, "auth=Bearer "); ok {
			token = v
		}
	}
	if user != "" && token != "" && x.check(user, token) {
		return nil, true, nil
	}
	x.refused = true
	return []byte(`{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}`), false, nil
}
