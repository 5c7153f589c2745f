package email

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/microdeets/microchat/config"
)

// SMTPOptions tune how mail is sent; a nil *SMTPOptions, like every zero
// field, means the default.
type SMTPOptions struct {
	// DialTimeout bounds connecting, the TLS handshake, and the server's
	// silence until it has answered EHLO (and STARTTLS): the greeting
	// included (default DefaultDialTimeout, 30 s).
	DialTimeout time.Duration
	// CommandTimeout bounds the wait for each answer after EHLO (default
	// 1 min; RFC 5321 section 4.5.3.2 suggests 5 min for relays, but a
	// submission server that is that slow is down).
	CommandTimeout time.Duration
	// DataTimeout bounds the wait for the answer after the final dot
	// (default 2 min).
	DataTimeout time.Duration
	// TLSConfig is the base of the TLS configuration (e.g. RootCAs in
	// tests); nil uses the system's roots. ServerName is always the
	// mailbox's SMTP host.
	TLSConfig *tls.Config
	// AttemptTimeout bounds one whole send, from dialing to the answer
	// after the final dot (default 3 min). The outbox lease must be longer
	// (Worker makes sure), so that a slow attempt is not claimed again
	// while it is still running.
	AttemptTimeout time.Duration
	// LocalName is the name given in EHLO; empty is the machine's host
	// name.
	LocalName string
}

func (o *SMTPOptions) withDefaults() SMTPOptions {
	var r SMTPOptions
	if o != nil {
		r = *o
	}
	if r.DialTimeout <= 0 {
		r.DialTimeout = DefaultDialTimeout
	}
	if r.CommandTimeout <= 0 {
		r.CommandTimeout = time.Minute
	}
	if r.DataTimeout <= 0 {
		r.DataTimeout = 2 * time.Minute
	}
	if r.AttemptTimeout <= 0 {
		r.AttemptTimeout = 3 * time.Minute
	}
	if r.LocalName == "" {
		r.LocalName = hostname()
	}
	return r
}

// The SMTP stages a SendError names.
const (
	StageConnect = "connect" // TCP, TLS, the greeting, EHLO and STARTTLS
	StageAuth    = "AUTH"
	StageMail    = "MAIL FROM"
	StageRcpt    = "RCPT TO"
	StageData    = "DATA"
)

// SendError is why a mail was not sent. Permanent means the server
// refused it for good, a 5xx answer to MAIL, RCPT or DATA (RFC 5321
// section 4.2.1): sending it again will not help. Anything else (a 4xx
// answer, a timeout, a refused or dropped connection, a failed TLS
// handshake or login) may go through later. A 5xx answer to EHLO or AUTH
// is not permanent either: it is the mailbox's configuration that is
// wrong, not the mail, and the admin can fix it.
type SendError struct {
	Stage     string
	Permanent bool
	// Reply is the server's answer, "550 5.1.1 user unknown", when there
	// was one.
	Reply string
	// Err is the cause; at the stages connect and AUTH a *Problem, which
	// words it for the admin as the mailbox check does.
	Err error
}

// Error is the stage and the server's answer ("RCPT TO: 550 5.1.1 user
// unknown"), or the cause ("AUTH: login refused: 535 ...").
func (e *SendError) Error() string {
	if _, ok := e.Err.(*smtp.SMTPError); ok {
		return e.Stage + ": " + e.Reply
	}
	return e.Stage + ": " + e.Err.Error()
}

func (e *SendError) Unwrap() error { return e.Err }

// cutError is a send cut short by the end of its context (the attempt
// timeout, a shutdown): that is the cause to tell, not how the connection
// closed under the command looked ("no greeting").
type cutError struct{ cause, err error }

func (e *cutError) Error() string { return "cut short: " + e.cause.Error() }

func (e *cutError) Unwrap() error { return e.err }

// sendErr classifies err of stage; 5xx answers are permanent only at the
// stages of the mail itself.
func sendErr(stage string, err error) *SendError {
	e := &SendError{Stage: stage, Err: err}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		e.Reply = smtpReply(se)
		e.Permanent = se.Code/100 == 5 && (stage == StageMail || stage == StageRcpt || stage == StageData)
	}
	return e
}

// smtpReply formats an answer as the server wrote it, on one line.
func smtpReply(se *smtp.SMTPError) string {
	msg := strings.Join(strings.Fields(se.Message), " ")
	c := se.EnhancedCode
	if c != smtp.EnhancedCodeNotSet && c != smtp.NoEnhancedCode {
		return fmt.Sprintf("%d %d.%d.%d %s", se.Code, c[0], c[1], c[2], msg)
	}
	return fmt.Sprintf("%d %s", se.Code, msg)
}

// Send sends raw from mailbox mb (MAIL FROM its address) to the envelope
// recipients to and cc, through its SMTP account in its TLS mode, logging
// in when it has a username as its auth says, with the secret of its
// password or password_file read now (dialSMTP and loginSMTP, as the
// mailbox check does). The mail is sent when Send returns nil; a
// recipient in cc that the server refuses with 5xx is left out rather
// than failing the mail for everyone, and returned with its answer in
// refused. A refused to fails the mail. Errors are *SendError.
func Send(ctx context.Context, mb config.Mailbox, to string, cc []string, raw []byte, opts *SMTPOptions) (refused []string, err error) {
	o := opts.withDefaults()
	s := smtpDefaults(mb.SMTP)
	ctx, cancel := context.WithTimeoutCause(ctx, o.AttemptTimeout, fmt.Errorf("not sent within the attempt timeout (%v)", o.AttemptTimeout))
	defer cancel()
	fail := func(stage string, err error) ([]string, error) {
		if _, replied := err.(*smtp.SMTPError); !replied && ctx.Err() != nil {
			err = &cutError{cause: context.Cause(ctx), err: err}
		}
		return nil, sendErr(stage, err)
	}
	// Connect (in s's TLS mode: implicit, RFC 8314; starttls required,
	// RFC 3207; none) and EHLO, each bounded by the dial timeout.
	c, err := dialSMTP(ctx, s, o.LocalName, o.TLSConfig, o.DialTimeout)
	if err != nil {
		return fail(StageConnect, err)
	}
	defer c.Close()
	// A command waiting for its answer when ctx ends fails at once.
	defer context.AfterFunc(ctx, func() { c.Close() })()
	c.CommandTimeout, c.SubmissionTimeout = o.CommandTimeout, o.DataTimeout
	if _, err := loginSMTP(c, s); err != nil {
		return fail(StageAuth, err)
	}
	if err := c.Mail(mb.Address, nil); err != nil {
		return fail(StageMail, err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return fail(StageRcpt, err)
	}
	for _, r := range cc {
		if err := c.Rcpt(r, nil); err != nil {
			if e := sendErr(StageRcpt, err); e.Permanent {
				refused = append(refused, r+": "+e.Reply)
				continue
			}
			return fail(StageRcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fail(StageData, err)
	}
	if _, err := w.Write(raw); err != nil {
		return fail(StageData, err)
	}
	if err := w.Close(); err != nil {
		return fail(StageData, err)
	}
	c.Quit() // the mail is the server's now, whatever QUIT answers
	return refused, nil
}
