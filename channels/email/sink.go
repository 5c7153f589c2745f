package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/microdeets/microchat/channels/email/mailparse"
	"github.com/microdeets/microchat/inbox"
)

// StoreSink is the production Sink: each fetched mail is parsed
// (mailparse) and stored (inbox.Store.IngestEmails), or kept raw in the
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

// Import parses and stores mails fetched from one folder, in order, as
// few transactions as it can (inbox.Store.IngestEmails: each run of mails
// between two quarantined ones in one), each advancing the folder's
// checkpoint in the transaction that stores it. A mail too large to
// download, one the parser refuses (*mailparse.ParseError) and one the
// store refuses as invalid (*inbox.InvalidError: no usable sender) are
// quarantined with the reason; one the store ignores (From our own
// mailbox: a loop) is logged at info; any other error is the database's,
// and the Ingester retries from the checkpoint.
func (k *StoreSink) Import(ctx context.Context, fs []Fetched) error {
	var run []Fetched
	var ins []inbox.IncomingEmail
	flush := func() error {
		err := k.ingest(ctx, run, ins)
		run, ins = run[:0], ins[:0]
		return err
	}
	parsed := k.parse(fs)
	for i, f := range fs {
		if f.TooLarge {
			if err := flush(); err != nil {
				return err
			}
			if err := k.quarantine(ctx, f, fmt.Sprintf("the mail is %d bytes, over the limit of %d bytes: not downloaded", f.Size, MaxMessageSize)); err != nil {
				return err
			}
			continue
		}
		in, err := parsed[i].in, parsed[i].err
		if pe, ok := errors.AsType[*mailparse.ParseError](err); ok {
			if err := flush(); err != nil {
				return err
			}
			if err := k.quarantine(ctx, f, pe.Reason); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		in.Mailbox, in.Folder, in.UIDValidity, in.UID = f.Mailbox, f.Folder, f.UIDValidity, f.UID
		if in.Date.IsZero() {
			in.Date = f.InternalDate
		}
		run, ins = append(run, f), append(ins, in)
	}
	return flush()
}

// parsed is a mail as mailparse.Parse returned it.
type parsed struct {
	in  inbox.IncomingEmail
	err error
}

// parse parses the mails of fs that are not TooLarge on every CPU: the
// parser is a fifth of a big import's time, and the store's transaction
// one goroutine.
func (k *StoreSink) parse(fs []Fetched) []parsed {
	out := make([]parsed, len(fs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(fs)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(fs); i = int(next.Add(1) - 1) {
				if !fs[i].TooLarge {
					out[i].in, out[i].err = mailparse.Parse(fs[i].Raw, k.Parse)
				}
			}
		})
	}
	wg.Wait()
	return out
}

// ingest stores the parsed mails ins of fs in one transaction; if one of
// them is invalid, one by one, quarantining it.
func (k *StoreSink) ingest(ctx context.Context, fs []Fetched, ins []inbox.IncomingEmail) error {
	if len(ins) == 0 {
		return nil
	}
	results, err := k.Store.IngestEmails(ctx, ins)
	if _, ok := errors.AsType[*inbox.InvalidError](err); ok {
		for i, in := range ins {
			res, err := k.Store.IngestEmail(ctx, in)
			if ie, ok := errors.AsType[*inbox.InvalidError](err); ok {
				if err := k.quarantine(ctx, fs[i], ie.Error()); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			k.imported(fs[i], in, res)
		}
		return nil
	}
	if err != nil {
		return err
	}
	for i, res := range results {
		k.imported(fs[i], ins[i], res)
	}
	return nil
}

// imported logs what the store did with the mail in of f.
func (k *StoreSink) imported(f Fetched, in inbox.IncomingEmail, res inbox.IngestResult) {
	switch {
	case res.Ignored != "":
		k.logger().Info("mail ignored", "mailbox", f.Mailbox, "uid", f.UID, "from", in.From.Addr, "reason", res.Ignored)
	case !res.Duplicate:
		k.logger().Debug("mail imported", "mailbox", f.Mailbox, "uid", f.UID, "conversation", res.ConversationID,
			"message", res.MessageID, "threaded", res.Threaded)
	}
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
