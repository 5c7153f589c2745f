package email

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/microdeets/microchat/config"
)

// imapConn is a logged-in IMAP connection.
type imapConn struct {
	c    *imapclient.Client
	wc   *watchedConn
	mode config.TLSMode
	// timeout bounds the server's silence during a command (within).
	timeout time.Duration
	// mech is the SASL mechanism logged in with, or "LOGIN".
	mech string
	// stop ends the closing of the connection when ctx is done.
	stop func() bool
}

// dialIMAP connects to the IMAP server of im in its TLS mode, upgrading
// with STARTTLS when asked (required then: a server that refuses is a
// Problem), and logs in. handler receives the server's unilateral data
// (EXISTS while idling). The connection is closed when ctx is done.
// Errors are *Problem.
func dialIMAP(ctx context.Context, im config.IMAP, tlsBase *tls.Config, timeout time.Duration, handler *imapclient.UnilateralDataHandler) (*imapConn, error) {
	timeout = cmp.Or(timeout, DefaultDialTimeout)
	wc, stop, err := dialWatched(ctx, im.Host, im.Port, im.TLS, tlsBase, timeout)
	if err != nil {
		return nil, err
	}
	ic := &imapConn{wc: wc, mode: im.TLS, timeout: timeout, stop: stop}
	opts := &imapclient.Options{TLSConfig: tlsConfig(tlsBase, im.Host), UnilateralDataHandler: handler}
	err = ic.do(func() error {
		if im.TLS == config.TLSStartTLS {
			c, err := imapclient.NewStartTLS(wc, opts)
			if err != nil {
				return describeStartTLS(err)
			}
			ic.c = c
		} else {
			ic.c = imapclient.New(wc, opts)
			if err := ic.c.WaitGreeting(); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = ic.login(im)
	}
	if err != nil {
		ic.Close()
		return nil, wc.describeEarly(err, im.TLS, timeout)
	}
	return ic, nil
}

// describeStartTLS words a failed STARTTLS.
func describeStartTLS(err error) error {
	if text := describeTLS(err, config.TLSStartTLS); text != "" {
		return &Problem{Kind: ProblemTLS, Text: text, Err: err}
	}
	if ie, ok := errors.AsType[*imap.Error](err); ok {
		return &Problem{Kind: ProblemTLS, Text: "STARTTLS refused: the server does not offer STARTTLS on this port (" + ie.Text + "); try tls: implicit (port 993), or none for a server on this host", Err: err}
	}
	return err
}

// do runs f, one or more commands, closing the connection when the server
// says nothing for the timeout meanwhile.
func (ic *imapConn) do(f func() error) error {
	return ic.wc.within(ic.timeout, func(err error) error { return noAnswer(ic.timeout, ic.mode, ic.wc.greeted(), err) }, f)
}

// login logs in as im says: a bearer token with its SASL mechanism; a
// password with AUTHENTICATE PLAIN when the server offers it, else LOGIN.
func (ic *imapConn) login(im config.IMAP) error {
	secret, err := im.Secret()
	if err != nil {
		return &Problem{Kind: ProblemLogin, Text: "password_file: " + err.Error(), Err: err}
	}
	var xoauth *xoauth2Client
	err = ic.do(func() error {
		caps := ic.c.Caps()
		if im.Auth == config.AuthPassword && !slices.Contains(caps.AuthMechanisms(), sasl.Plain) {
			if caps.Has(imap.CapLoginDisabled) {
				return &Problem{Kind: ProblemLogin, Text: "login impossible: the server refuses to log in on this connection (LOGINDISABLED); use tls: starttls or implicit"}
			}
			ic.mech = "LOGIN"
			return ic.c.Login(im.Username, secret).Wait()
		}
		client := saslClient(im.Auth, im.Username, secret, im.Host, im.Port)
		xoauth, _ = client.(*xoauth2Client)
		ic.mech = saslMechanism(im.Auth)
		return ic.c.Authenticate(client)
	})
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*Problem](err); ok {
		return err
	}
	text := err.Error()
	if ie, ok := errors.AsType[*imap.Error](err); ok {
		text = ie.Text
		if ie.Code != "" {
			text = "[" + string(ie.Code) + "] " + text
		}
	} else if oe, ok := errors.AsType[*sasl.OAuthBearerError](err); ok {
		text = fmt.Sprintf("the token was refused (status %s, scope %s)", oe.Status, oe.Scope)
	} else {
		// Not an answer of the server: the connection broke.
		return err
	}
	if xoauth != nil && xoauth.refusal != "" {
		text += " (" + strings.TrimSpace(xoauth.refusal) + ")"
	}
	return &Problem{Kind: ProblemLogin, Text: "login refused (" + ic.mech + "): " + text, Err: err}
}

// selectFolder selects folder for reading and writing flags (SELECT, not
// EXAMINE: the keyword $MicrochatImported is stored). Errors are *Problem.
func (ic *imapConn) selectFolder(folder string) (*imap.SelectData, error) {
	var data *imap.SelectData
	err := ic.do(func() error {
		var err error
		data, err = ic.c.Select(folder, nil).Wait()
		return err
	})
	if ie, ok := errors.AsType[*imap.Error](err); ok {
		text := fmt.Sprintf("folder missing: %q cannot be selected: %s", folder, ie.Text)
		if ie.Code != "" {
			text = fmt.Sprintf("folder missing: %q cannot be selected: [%s] %s", folder, ie.Code, ie.Text)
		}
		return nil, &Problem{Kind: ProblemFolder, Text: text, Err: err}
	}
	return data, err
}

// Close closes the connection without LOGOUT.
func (ic *imapConn) Close() {
	ic.stop()
	if ic.c != nil {
		ic.c.Close()
	}
	ic.wc.Close()
}

// Logout says LOGOUT, politely, and closes the connection.
func (ic *imapConn) Logout() {
	if ic.c != nil {
		_ = ic.do(func() error { return ic.c.Logout().Wait() })
	}
	ic.Close()
}
