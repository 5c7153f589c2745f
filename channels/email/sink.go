package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/microdeets/microchat/channels/email/mailparse"
	"github.com/microdeets/microchat/inbox"
)

// StoreSink is the production Sink: each fetched mail is parsed
// (mailparse) and stored (inbox.Store.IngestEmail), or kept raw in the
// quarantine when it cannot be a message (issue 12 item 3), so that one
// bad mail never stops its mailbox.
type StoreSink struct {
	Store *inbox.Store
	// Parse bounds the parser; OwnAddresses should hold every configured
	// mailbox's address (mail from them is automatic: a loop).
	Parse  mailparse.Options
	Logger *slog.Logger
}

var _ Sink = (*StoreSink)(nil)

// IMAPCheckpoint is inbox.Store.IMAPCheckpoint.
func (k *StoreSink) IMAPCheckpoint(ctx context.Context, mailbox, folder string) (inbox.IMAPCheckpoint, error) {
	return k.Store.IMAPCheckpoint(ctx, mailbox, folder)
}

// SaveIMAPCheckpoint is inbox.Store.SaveIMAPCheckpoint.
func (k *StoreSink) SaveIMAPCheckpoint(ctx context.Context, mailbox, folder string, cp inbox.IMAPCheckpoint) error {
	return k.Store.SaveIMAPCheckpoint(ctx, mailbox, folder, cp)
}

// Import parses and stores one mail, advancing the folder's checkpoint in
// the same transaction. A mail too large to download, one the parser
// refuses (*mailparse.ParseError) and one the store refuses as invalid
// (*inbox.InvalidError: no usable sender) are quarantined with the
// reason; one the store ignores (From our own mailbox: a loop) is logged
// at info; any other error is the database's, and the Ingester retries.
func (k *StoreSink) Import(ctx context.Context, f Fetched) error {
	log := k.logger()
	if f.TooLarge {
		return k.quarantine(ctx, f, fmt.Sprintf("the mail is %d bytes, over the limit of %d bytes: not downloaded", f.Size, MaxMessageSize))
	}
	in, err := mailparse.Parse(f.Raw, k.Parse)
	var pe *mailparse.ParseError
	if errors.As(err, &pe) {
		return k.quarantine(ctx, f, pe.Reason)
	}
	if err != nil {
		return err
	}
	in.Mailbox, in.Folder, in.UIDValidity, in.UID = f.Mailbox, f.Folder, f.UIDValidity, f.UID
	if in.Date.IsZero() {
		in.Date = f.InternalDate
	}
	res, err := k.Store.IngestEmail(ctx, in)
	var ie *inbox.InvalidError
	if errors.As(err, &ie) {
		return k.quarantine(ctx, f, ie.Error())
	}
	if err != nil {
		return err
	}
	switch {
	case res.Ignored != "":
		log.Info("mail ignored", "mailbox", f.Mailbox, "uid", f.UID, "from", in.From.Addr, "reason", res.Ignored)
	case !res.Duplicate:
		log.Debug("mail imported", "mailbox", f.Mailbox, "uid", f.UID, "conversation", res.ConversationID,
			"message", res.MessageID, "threaded", res.Threaded)
	}
	return nil
}

func (k *StoreSink) quarantine(ctx context.Context, f Fetched, reason string) error {
	q, err := k.Store.Quarantine(ctx, inbox.QuarantinedEmail{Mailbox: f.Mailbox, Folder: f.Folder,
		UIDValidity: f.UIDValidity, UID: f.UID, Reason: reason, Size: f.Size, Raw: f.Raw})
	if err != nil {
		return err
	}
	k.logger().Warn("mail quarantined", "mailbox", f.Mailbox, "uid", f.UID, "reason", reason, "quarantine_id", q.ID)
	return nil
}

func (k *StoreSink) logger() *slog.Logger {
	if k.Logger != nil {
		return k.Logger
	}
	return slog.Default()
}
