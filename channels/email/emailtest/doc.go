// Package emailtest gives the email channel's tests real mail servers on
// the loopback interface, each started for one test and stopped when it
// ends:
//
//   - an in-memory IMAP server (go-imap's imapmemserver), in process and
//     fast, for most ingest tests and for faults that need a server we
//     control;
//   - an SMTP server (go-smtp) that records every mail it accepts and can
//     answer with scripted replies (421 then 250, a 5xx), for the outbox;
//   - a real Dovecot (StartDovecot), Debian's dovecot-imapd run as an
//     unprivileged instance with its own configuration in a temporary
//     directory, so that the same paths are proven against the IMAP
//     server most self-hosted mailboxes run (issue 12, Tests).
//
// A server that is missing fails the test with the command that installs
// it (scripts/test-deps.sh installs Dovecot); nothing is skipped. Helpers
// take the test's testing.TB and fail it themselves, so that a test reads
// as the steps it takes.
//
// The Dovecot instance listens on two free ports of 127.0.0.1: Port, where
// logging in without TLS is allowed and STARTTLS is offered, and TLSPort
// with implicit TLS, both with a certificate made for the test (CertPool
// trusts it), so each of a mailbox's tls modes (none, starttls, implicit)
// can be tested. Mail is put in with IMAP APPEND (Deliver, Append);
// ChangeUIDValidity gives a folder a new UIDVALIDITY keeping its mail.
// Starting takes about 60 ms here, stopping a few ms.
package emailtest
