package email

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/microdeets/microchat/channels/email/emailtest"
	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// dovecotHarness is a harness whose server is a real Dovecot, reached in
// the TLS mode given.
func dovecotHarness(t *testing.T, d *emailtest.Dovecot, mode config.TLSMode) *harness {
	clock := inboxtest.NewClock()
	clock.Advance(time.Since(clock.Now())) // Dovecot lives in real time
	h := &harness{t: t, clock: clock, store: newFakeStore(), m: NewMetrics()}
	h.sink = h.store.sink()
	port := d.Port
	if mode == config.TLSImplicit {
		port = d.TLSPort
	}
	h.mb = config.Mailbox{
		Name: "support", Address: d.User,
		IMAP: config.IMAP{Host: d.Host, Port: port, TLS: mode, Username: d.User, Password: d.Password,
			Auth: config.AuthPassword, Folder: "INBOX"},
		ImportSince:  config.LookbackOf(config.DefaultImportSince),
		PollInterval: config.Duration(time.Minute),
	}
	h.opts = IngestOptions{
		Logger:    testLogger(t),
		Metrics:   h.m,
		TLSConfig: d.TLSConfig(),
		Now:       clock.Now,
		AfterFunc: clock.AfterFunc,
		Rand:      func() float64 { return 1 },
	}
	return h
}

// TestDovecot runs the ingest against a real Dovecot in each TLS mode:
// the first sync within import_since, new mail through IDLE, a changed
// UIDVALIDITY (Dovecot ends the session) without duplicates, and the mail
// left unread with the keyword; and the mailbox check's lines.
func TestDovecot(t *testing.T) {
	for _, mode := range []config.TLSMode{config.TLSNone, config.TLSStartTLS, config.TLSImplicit} {
		t.Run(string(mode), func(t *testing.T) {
			d := emailtest.StartDovecot(t)
			h := dovecotHarness(t, d, mode)
			now := h.clock.Now()
			d.Append("INBOX", now.Add(-20*24*time.Hour), mailText("old1", 2000), mailText("old2", 2000))
			d.Append("INBOX", now.Add(-2*time.Hour), mailText("a", 4000), mailText("b", 4000))
			h.start()
			h.idle("the first sync")
			if got, want := h.store.storedIDs(), ids("a", "b"); !slices.Equal(got, want) {
				t.Fatalf("first sync stored %v, want %v", got, want)
			}

			d.Deliver(mailText("c", 3000))
			h.waitFor("the new mail", func() bool { return h.store.count() == 3 })

			// Dovecot tells a session that the folder's UIDVALIDITY
			// changed (BYE) when the session next syncs the folder, as
			// new mail makes it do.
			validity := d.ChangeUIDValidity("INBOX")
			d.Deliver(mailText("d", 3000))
			h.waitFor("the sync under the new UIDVALIDITY", func() bool {
				return h.store.checkpoint("support").UIDValidity == validity && h.g.Idling()
			})
			h.waitFor("the new mail", func() bool { return h.store.count() == 4 })
			h.store.checkOnce(t, ids("a", "b", "c", "d"))
			h.store.mu.Lock()
			offeredA, below := h.store.offered["a@test"], h.store.belowCheckpoint
			h.store.mu.Unlock()
			if offeredA != 2 || len(below) > 0 {
				t.Errorf("a offered %d times (want 2: once per UIDVALIDITY), below the checkpoint: %v", offeredA, below)
			}
			if cp := h.store.checkpoint("support"); cp.LastUID != 6 {
				t.Errorf("checkpoint %+v, want LastUID 6", cp)
			}

			// Left where it was, unread; the keyword where imported.
			c := d.Dial()
			if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
				t.Fatal(err)
			}
			bufs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
			if err != nil || len(bufs) != 6 {
				t.Fatalf("FETCH: %d mails, %v; want all 6", len(bufs), err)
			}
			for _, b := range bufs {
				var flags []string
				for _, f := range b.Flags {
					flags = append(flags, strings.ToLower(string(f)))
				}
				want := []string{strings.ToLower(Keyword)}
				if b.UID <= 2 {
					want = nil
				}
				if !slices.Equal(flags, want) {
					t.Errorf("UID %d has flags %v, want %v", b.UID, flags, want)
				}
			}

			lines := Check(context.Background(), func() config.Mailbox {
				mb := h.mb
				mb.SMTP = config.SMTP{Host: d.Host, Port: unusedPort(t), TLS: config.TLSNone}
				return mb
			}(), &CheckOptions{TLSConfig: d.TLSConfig()})
			var text []string
			for _, l := range lines {
				text = append(text, l.String())
			}
			if len(lines) != 4 || lines[0].Status != CheckOK || lines[1].Status != CheckOK || lines[2].Text != "IDLE offered: new mail is fetched as soon as it arrives" || !lines[3].Failed() {
				t.Errorf("Check() =\n%s", strings.Join(text, "\n"))
			}
			if !strings.Contains(lines[1].Text, fmt.Sprintf("folder INBOX: 6 mails, UIDVALIDITY %d", validity)) {
				t.Errorf("folder line %q", lines[1])
			}
		})
	}
}
