package email

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/microdeets/microchat/inbox"
)

// batchBytes stops a FETCH batch once the mails in it add up to this
// much, so that memory stays bounded by twice it (a batch being stored,
// the next being fetched) plus one MaxMessageSize.
const batchBytes = 32 << 20

// maxHeaderBytes is how much of a TooLarge mail's header is fetched (the
// parser's header limit, issue 12).
const maxHeaderBytes = 2 << 20

// progressInterval is the longest a big sync goes without logging its
// progress.
const progressInterval = 10 * time.Second

// session is one IMAP connection of an Ingester, run by one goroutine.
type session struct {
	g   *Ingester
	ic  *imapConn
	log *slog.Logger
	// exists receives a value when the server announces EXISTS (new
	// mail) in IDLE or in any response.
	exists chan struct{}
	folder string
	// validity is the folder's UIDVALIDITY; last the highest UID in it
	// the Sink has, or that is known to need no import.
	validity uint32
	last     uint32
	// keyword is set when PERMANENTFLAGS allows keywords.
	keyword bool
}

// meta is what a first FETCH says about a mail, before its body.
type meta struct {
	uid  uint32
	size int64
	date time.Time
}

func (s *session) run(ctx context.Context) (healthy bool, err error) {
	sel, err := s.open(ctx)
	if err != nil {
		return false, err
	}
	defer s.close()
	if err := s.sync(ctx, sel); err != nil {
		return false, err
	}
	if s.ic.c.Caps().Has(imap.CapIdle) {
		return true, s.idleLoop(ctx)
	}
	s.log.Info("IMAP server offers no IDLE; polling", "every", s.g.mb.PollInterval)
	return true, s.pollLoop(ctx)
}

// open connects, logs in and selects the folder. When it succeeds, close
// must be called.
func (s *session) open(ctx context.Context) (*imap.SelectData, error) {
	g := s.g
	handler := &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				select {
				case s.exists <- struct{}{}:
				default:
				}
			}
		},
	}
	var err error
	s.ic, err = dialIMAP(ctx, g.mb.IMAP, g.o.TLSConfig, g.o.Timeout, handler)
	if err != nil {
		return nil, err
	}
	sel, err := s.ic.selectFolder(s.folder)
	if err != nil {
		s.ic.Close()
		return nil, err
	}
	g.m.Connected.WithLabelValues(g.mb.Name).Set(1)
	s.validity = sel.UIDValidity
	s.keyword = slices.Contains(sel.PermanentFlags, imap.FlagWildcard)
	s.log.Info("IMAP connected", "host", g.mb.IMAP.Host, "tls", g.mb.IMAP.TLS, "login", s.ic.mech,
		"messages", sel.NumMessages, "uidvalidity", sel.UIDValidity, "uidnext", sel.UIDNext, "idle", s.ic.c.Caps().Has(imap.CapIdle))
	return sel, nil
}

func (s *session) close() {
	s.g.m.Connected.WithLabelValues(s.g.mb.Name).Set(0)
	s.ic.Close()
}

// sync brings the Sink up to date with the folder just selected, from
// the checkpoint: a first sync, or the mail above the checkpoint, or
// nothing at all when UIDNEXT says there is nothing new.
func (s *session) sync(ctx context.Context, sel *imap.SelectData) error {
	cp, err := s.g.sink.IMAPCheckpoint(ctx, s.g.mb.Name, s.folder)
	if err != nil {
		return storeProblem("reading the checkpoint", err)
	}
	uidNext := uint32(sel.UIDNext)
	switch {
	case cp.UIDValidity == 0:
		return s.firstSync(ctx, sel, "no checkpoint yet")
	case cp.UIDValidity != sel.UIDValidity:
		s.log.Warn("IMAP UIDVALIDITY changed: the folder's UIDs were reset; syncing it again, mail imported before is recognised by its Message-ID",
			"was", cp.UIDValidity, "now", sel.UIDValidity)
		return s.firstSync(ctx, sel, "UIDVALIDITY changed")
	case uidNext != 0 && cp.LastUID >= uidNext:
		s.log.Warn("IMAP checkpoint is beyond the folder's UIDNEXT though UIDVALIDITY is the same (a server restored from a backup?); syncing it again",
			"checkpoint", cp.LastUID, "uidnext", uidNext)
		return s.firstSync(ctx, sel, "checkpoint beyond UIDNEXT")
	}
	s.last = cp.LastUID
	// Nothing new unless UIDNEXT moved past the checkpoint: no SEARCH,
	// no FETCH (a server that gives no UIDNEXT is asked).
	if uidNext == 0 || uidNext > s.last+1 {
		return s.catchUp(ctx, uidNext)
	}
	return nil
}

// firstSync imports the mail of the folder received within the mailbox's
// import_since, for a folder never synced or whose UIDVALIDITY changed.
// Mail imported before, under the old UIDVALIDITY, is offered to the Sink
// again and recognised there by its Message-ID: the Sink's dedupe, not
// the UIDs, keeps it single.
func (s *session) firstSync(ctx context.Context, sel *imap.SelectData, why string) error {
	now := s.g.o.Now()
	cutoff, limited := s.g.mb.ImportSince.Cutoff(now)
	s.last = 0
	var set imap.UIDSet
	switch {
	case sel.NumMessages == 0, limited && !cutoff.Before(now):
		// Empty folder, or import_since: 0s.
	case limited:
		// SEARCH SINCE compares dates only, in the server's time zone:
		// ask a day more and cut exactly by INTERNALDATE below.
		var err error
		set, err = s.search(&imap.SearchCriteria{Since: cutoff.Add(-24 * time.Hour)})
		if err != nil {
			return err
		}
	default:
		set = imap.UIDSet{{Start: 1, Stop: 0}} // 1:*
	}
	s.log.Info("IMAP first sync", "why", why, "since", s.g.mb.ImportSince.String(), "uidvalidity", s.validity)
	if len(set) > 0 {
		metas, err := s.fetchMeta(set)
		if err != nil {
			return err
		}
		if limited {
			metas = slices.DeleteFunc(metas, func(m meta) bool { return m.date.Before(cutoff) })
		}
		if err := s.importAll(ctx, metas); err != nil {
			return err
		}
	}
	return s.skipTo(ctx, uint32(sel.UIDNext))
}

// catchUp imports every mail with a UID above the checkpoint. uidNext is
// the folder's UIDNEXT when known (at SELECT), else 0.
func (s *session) catchUp(ctx context.Context, uidNext uint32) error {
	// "n:*" includes the highest UID even when it is below n (RFC 9051
	// section 6.4.8): fetchMeta drops what is not above s.last.
	metas, err := s.fetchMeta(imap.UIDSet{{Start: imap.UID(s.last + 1), Stop: 0}})
	if err != nil {
		return err
	}
	if err := s.importAll(ctx, metas); err != nil {
		return err
	}
	return s.skipTo(ctx, uidNext)
}

// skipTo moves the checkpoint to uidNext-1 when the mail up to it has
// been dealt with but the checkpoint is lower: mail too old for the first
// sync, or deleted before it was fetched. The next connect then sees
// nothing new without asking.
func (s *session) skipTo(ctx context.Context, uidNext uint32) error {
	if uidNext == 0 || uidNext-1 <= s.last {
		return nil
	}
	cp := inbox.IMAPCheckpoint{UIDValidity: s.validity, LastUID: uidNext - 1}
	if err := s.g.sink.SaveIMAPCheckpoint(ctx, s.g.mb.Name, s.folder, cp); err != nil {
		return storeProblem("saving the checkpoint", err)
	}
	s.last = cp.LastUID
	return nil
}

// search runs UID SEARCH.
func (s *session) search(criteria *imap.SearchCriteria) (imap.UIDSet, error) {
	var data *imap.SearchData
	err := s.ic.do(func() error {
		var err error
		data, err = s.ic.c.UIDSearch(criteria, nil).Wait()
		return err
	})
	if err != nil {
		return nil, protocolProblem("UID SEARCH", err)
	}
	set, _ := data.All.(imap.UIDSet)
	return set, nil
}

// fetchMeta returns the UID, RFC822.SIZE and INTERNALDATE of the mails
// in set with a UID above s.last, in UID order.
func (s *session) fetchMeta(set imap.UIDSet) ([]meta, error) {
	var metas []meta
	err := s.ic.do(func() error {
		cmd := s.ic.c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true})
		for {
			msg := cmd.Next()
			if msg == nil {
				break
			}
			buf, err := msg.Collect()
			if err != nil {
				cmd.Close()
				return err
			}
			if uint32(buf.UID) > s.last {
				metas = append(metas, meta{uid: uint32(buf.UID), size: buf.RFC822Size, date: buf.InternalDate})
			}
		}
		return cmd.Close()
	})
	if err != nil {
		return nil, protocolProblem("UID FETCH (RFC822.SIZE INTERNALDATE)", err)
	}
	slices.SortFunc(metas, func(a, b meta) int { return int(int64(a.uid) - int64(b.uid)) })
	metas = slices.CompactFunc(metas, func(a, b meta) bool { return a.uid == b.uid })
	return metas, nil
}

// progress tracks a sync for the log and the remaining gauge.
type progress struct {
	s           *session
	total, done int
	lastLog     time.Time
	logged      int
}

// step records n more mails imported.
func (p *progress) step(n int) {
	p.done += n
	g := p.s.g
	g.m.Imported.WithLabelValues(g.mb.Name).Add(float64(n))
	g.m.Remaining.WithLabelValues(g.mb.Name).Set(float64(p.total - p.done))
	if now := g.o.Now(); p.done-p.logged >= g.o.ProgressEvery || now.Sub(p.lastLog) >= progressInterval {
		p.s.log.Info("IMAP sync progress", "done", p.done, "total", p.total)
		p.lastLog, p.logged = now, p.done
	}
}

// importAll fetches the mails of metas (in UID order) in batches and hands
// each to the Sink in UID order, fetching the next batch while the Sink
// stores one.
func (s *session) importAll(ctx context.Context, metas []meta) error {
	if len(metas) == 0 {
		return nil
	}
	g := s.g
	p := &progress{s: s, total: len(metas), lastLog: g.o.Now()}
	level := slog.LevelDebug
	if len(metas) > g.o.Batch {
		level = slog.LevelInfo
	}
	s.log.Log(ctx, level, "IMAP fetching", "mails", len(metas), "from_uid", metas[0].uid, "to_uid", metas[len(metas)-1].uid)
	g.m.Remaining.WithLabelValues(g.mb.Name).Set(float64(len(metas)))
	defer g.m.Remaining.WithLabelValues(g.mb.Name).Set(0)

	// The Sink stores one batch on a goroutine of its own while the next
	// is fetched: with a distant server, a batch's FETCH takes about as
	// long as storing one.
	var storing *stored
	defer func() {
		if storing != nil {
			<-storing.done
		}
	}()
	settle := func() error {
		if storing == nil {
			return nil
		}
		b := storing
		storing = nil
		return s.settle(b, p)
	}
	var batch []meta
	var size int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		fs, err := s.fetchBatch(batch)
		batch, size = batch[:0], 0
		if err != nil {
			return err
		}
		if err := settle(); err != nil || len(fs) == 0 {
			return err
		}
		storing = &stored{fs: fs, done: make(chan error, 1)}
		go func(b *stored) { b.done <- s.g.sink.Import(ctx, b.fs) }(storing)
		return nil
	}
	for _, m := range metas {
		if m.size > g.o.MaxSize {
			if err := flush(); err != nil {
				return err
			}
			if err := settle(); err != nil {
				return err
			}
			if err := s.importTooLarge(ctx, m, p); err != nil {
				return err
			}
			continue
		}
		batch = append(batch, m)
		size += m.size
		if len(batch) >= g.o.Batch || size >= batchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := settle(); err != nil {
		return err
	}
	if p.total > g.o.Batch {
		s.log.Info("IMAP sync done", "mails", p.total)
	}
	return nil
}

// stored is a batch handed to the Sink, and the outcome of its Import.
type stored struct {
	fs   []Fetched
	done chan error
}

// settle waits for the Sink to store b, then records it: the checkpoint
// as far as b, the progress, and the keyword on the server.
func (s *session) settle(b *stored, p *progress) error {
	if err := <-b.done; err != nil {
		return storeProblem(fmt.Sprintf("importing UIDs %d to %d", b.fs[0].UID, b.fs[len(b.fs)-1].UID), err)
	}
	s.last = b.fs[len(b.fs)-1].UID
	p.step(len(b.fs))
	uids := make([]imap.UID, len(b.fs))
	for i, f := range b.fs {
		uids[i] = imap.UID(f.UID)
	}
	s.markImported(uids)
	return nil
}

// fetchBatch fetches the bodies of batch with BODY.PEEK[] (which leaves
// \Seen alone), in UID order. A mail deleted since its metadata was
// fetched is left out.
func (s *session) fetchBatch(batch []meta) ([]Fetched, error) {
	uids := make([]imap.UID, len(batch))
	for i, m := range batch {
		uids[i] = imap.UID(m.uid)
	}
	raws, err := s.fetchBodies(imap.UIDSetNum(uids...), &imap.FetchItemBodySection{Peek: true})
	if err != nil {
		return nil, protocolProblem("UID FETCH (BODY.PEEK[])", err)
	}
	var fs []Fetched
	for _, m := range batch {
		raw, ok := raws[m.uid]
		if !ok {
			continue
		}
		f := s.fetched(m)
		if int64(len(raw)) > s.g.o.MaxSize {
			// The server's RFC822.SIZE was below the body it sent.
			f.TooLarge, f.Size = true, int64(len(raw))
			raw = headerOf(raw)
		}
		f.Raw = raw
		fs = append(fs, f)
	}
	return fs, nil
}

// errLiteralCut is a FETCH whose body literal ended early: the
// connection broke in the middle of a mail.
var errLiteralCut = errors.New("the connection broke in the middle of a mail")

// fetchBodies runs a UID FETCH of one body section per mail and returns
// the UID and body of each mail the server sent, each body at most
// MaxSize+1 bytes (the rest is discarded).
func (s *session) fetchBodies(set imap.UIDSet, section *imap.FetchItemBodySection) (map[uint32][]byte, error) {
	raws := map[uint32][]byte{}
	err := s.ic.do(func() error {
		cmd := s.ic.c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
		if err := s.readBodies(cmd, raws); err != nil {
			// Once a literal has failed, go-imap's reader goroutine
			// carries on reading the connection while draining the
			// command would read it too: close the client, which
			// waits for that goroutine to end, and leave the command.
			s.ic.c.Close()
			return err
		}
		return cmd.Close()
	})
	return raws, err
}

// readBodies reads the UID and body of each message of a FETCH into raws.
func (s *session) readBodies(cmd *imapclient.FetchCommand, raws map[uint32][]byte) error {
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var uid uint32
		var raw []byte
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch item := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = uint32(item.UID)
			case imapclient.FetchItemDataBodySection:
				if item.Literal == nil {
					continue
				}
				var buf bytes.Buffer
				size := item.Literal.Size()
				if size <= s.g.o.MaxSize {
					buf.Grow(int(size))
				}
				if _, err := io.Copy(&buf, io.LimitReader(item.Literal, s.g.o.MaxSize+1)); err != nil {
					return err
				}
				if int64(buf.Len()) < size && int64(buf.Len()) <= s.g.o.MaxSize {
					// go-imap reports a connection closed inside a
					// literal as its end (io.EOF).
					return errLiteralCut
				}
				raw = buf.Bytes()
			}
		}
		if uid != 0 && raw != nil {
			raws[uid] = raw
		}
	}
	return nil
}

// importTooLarge hands a mail over MaxSize to the Sink without its body:
// only its header, so that the quarantine notice can say who sent what.
func (s *session) importTooLarge(ctx context.Context, m meta, p *progress) error {
	raws, err := s.fetchBodies(imap.UIDSetNum(imap.UID(m.uid)), &imap.FetchItemBodySection{
		Specifier: imap.PartSpecifierHeader,
		Peek:      true,
		Partial:   &imap.SectionPartial{Offset: 0, Size: maxHeaderBytes},
	})
	if err != nil {
		return protocolProblem("UID FETCH (BODY.PEEK[HEADER])", err)
	}
	header := raws[m.uid]
	if len(header) > maxHeaderBytes {
		header = header[:maxHeaderBytes]
	}
	s.log.Warn("IMAP mail too large: not downloaded, handed over for quarantine", "uid", m.uid, "size", m.size, "limit", s.g.o.MaxSize)
	f := s.fetched(m)
	f.Raw, f.TooLarge = header, true
	if err := s.g.sink.Import(ctx, []Fetched{f}); err != nil {
		return storeProblem(fmt.Sprintf("importing UID %d (too large)", m.uid), err)
	}
	s.last = m.uid
	p.step(1)
	s.markImported([]imap.UID{imap.UID(m.uid)})
	return nil
}

func (s *session) fetched(m meta) Fetched {
	return Fetched{
		Mailbox:      s.g.mb.Name,
		Folder:       s.folder,
		UIDValidity:  s.validity,
		UID:          m.uid,
		Size:         m.size,
		InternalDate: m.date,
	}
}

// headerOf returns the header section of raw: up to and including the
// first empty line, at most maxHeaderBytes.
func headerOf(raw []byte) []byte {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		raw = raw[:i+4]
	} else if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		raw = raw[:i+2]
	}
	return bytes.Clone(raw[:min(len(raw), maxHeaderBytes)])
}

// markImported adds Keyword to the imported mails, where the folder
// allows keywords; nothing else on the server changes. A failure is only
// logged: the mail is imported either way.
func (s *session) markImported(uids []imap.UID) {
	if !s.keyword || len(uids) == 0 {
		return
	}
	err := s.ic.do(func() error {
		return s.ic.c.Store(imap.UIDSetNum(uids...), &imap.StoreFlags{
			Op:     imap.StoreFlagsAdd,
			Silent: true,
			Flags:  []imap.Flag{Keyword},
		}, nil).Close()
	})
	if err != nil {
		s.log.Warn("IMAP could not add the keyword "+Keyword, "err", err)
	}
}

// takeExists reports whether an EXISTS arrived since the last call.
func (s *session) takeExists() bool {
	select {
	case <-s.exists:
		return true
	default:
		return false
	}
}

// idleLoop waits for new mail in IDLE (RFC 2177), fetching it when the
// server announces it, and re-issues IDLE every IdleRestart so that the
// server does not end it (RFC 2177 section 3: at most 29 minutes).
func (s *session) idleLoop(ctx context.Context) error {
	for {
		if s.takeExists() {
			if err := s.catchUp(ctx, 0); err != nil {
				return err
			}
		}
		var cmd *imapclient.IdleCommand
		err := s.ic.do(func() error {
			var err error
			cmd, err = s.ic.c.Idle()
			return err
		})
		if err != nil {
			return protocolProblem("IDLE", err)
		}
		s.g.idling.Store(true)
		restart, stop := s.g.timer(s.g.o.IdleRestart)
		newMail := false
		select {
		case <-s.exists:
			newMail = true
		case <-restart:
		case <-ctx.Done():
		case <-s.ic.c.Closed():
			stop()
			s.g.idling.Store(false)
			return errClosedByServer("IDLE")
		}
		stop()
		s.g.idling.Store(false)
		err = s.ic.do(func() error {
			if err := cmd.Close(); err != nil {
				return err
			}
			return cmd.Wait()
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return protocolProblem("IDLE", err)
		}
		if newMail {
			if err := s.catchUp(ctx, 0); err != nil {
				return err
			}
		}
	}
}

// pollLoop checks for new mail every PollInterval with NOOP, for a server
// without IDLE: an EXISTS in the answer means new mail; no EXISTS, nothing
// is fetched.
func (s *session) pollLoop(ctx context.Context) error {
	for {
		s.g.idling.Store(true)
		t, stop := s.g.timer(s.g.mb.PollInterval.D())
		newMail := false
		select {
		case <-t:
		case <-s.exists:
			// Announced along with another response: fetch now.
			newMail = true
		case <-ctx.Done():
		case <-s.ic.c.Closed():
			stop()
			s.g.idling.Store(false)
			return errClosedByServer("waiting to poll")
		}
		stop()
		s.g.idling.Store(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !newMail {
			var err error
			if newMail, err = s.poll(); err != nil {
				return err
			}
		}
		if newMail {
			if err := s.catchUp(ctx, 0); err != nil {
				return err
			}
		}
	}
}

// poll asks the server for news with NOOP and reports whether it
// announced new mail (EXISTS).
func (s *session) poll() (newMail bool, err error) {
	if err := s.ic.do(func() error { return s.ic.c.Noop().Wait() }); err != nil {
		return false, protocolProblem("NOOP", err)
	}
	return s.takeExists(), nil
}

// errClosedByServer is the Problem of a connection that ended while the
// session waited: the server closed it (Dovecot does when the folder's
// UIDVALIDITY changes) or the network dropped it.
func errClosedByServer(while string) error {
	return &Problem{Kind: ProblemProtocol, Text: "IMAP: the connection was closed (" + while + ")"}
}

// storeProblem is a failure of the Sink.
func storeProblem(doing string, err error) error {
	return &Problem{Kind: ProblemStore, Text: "store: " + doing + ": " + err.Error(), Err: err}
}

// protocolProblem is a failed IMAP command, unless err is already a
// Problem (a timeout).
func protocolProblem(cmd string, err error) error {
	if _, ok := errors.AsType[*Problem](err); ok {
		return err
	}
	return &Problem{Kind: ProblemProtocol, Text: "IMAP " + cmd + ": " + err.Error(), Err: err}
}
