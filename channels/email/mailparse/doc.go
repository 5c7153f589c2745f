// Package mailparse turns one raw mail (RFC 5322, MIME) into the inbox's
// model of it, inbox.IncomingEmail, for the email channel's ingest (issue
// 12, items 3 and 8). It decides nothing about conversations: threading,
// identity and storage are the inbox's.
//
// The rules it keeps:
//
//   - Every mail that has a header and a sender becomes an IncomingEmail;
//     damage that leaves something to read (a broken part, bad base64, an
//     unknown charset, a MIME structure cut short, too many parts, nesting
//     too deep, an attachment over the size limit) keeps what can be read
//     and says what was lost in Notices, never silently. What cannot be
//     made a message at all, or is over a limit that makes it unusable
//     (50 MB, 2 MB of header), is a *ParseError, and the caller keeps it
//     raw in the quarantine.
//   - Memory and time are bounded by the limits of Options and linear in
//     the size of the mail (times the nesting depth for nested bytes).
//   - Text is valid UTF-8 without NUL or hidden control characters, in
//     every charset go-message knows; HTML is sanitized by the inbox's one
//     policy (inbox.SanitizeEmailHTML), remote images not loaded.
//   - Text and HTML are what the reply adds: quoted history and signatures
//     trimmed (TrimQuoted, TrimQuotedHTML); FullText and FullHTML are the
//     whole mail.
//   - Automatic mail (RFC 3834: Auto-Submitted, Precedence, lists, empty
//     Return-Path, bounces, our own address) is marked Auto with the
//     signal in AutoReason, so that nothing automatic answers it; a bounce
//     (RFC 3464) says which of our mails failed and why (Bounce).
//   - Addresses are read leniently (ParseAddress, ParseAddressList) with
//     lower-cased domains; PlusToken reads a conversation token from a
//     plus address (rule 9).
package mailparse
