package inbox

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Visitors are contacts who write from the widget. They do not log in:
// pressing Start Chat mints a visitor token, a long random string bound to
// the new contact, which the widget keeps and sends with every request.
// The database keeps only the token's SHA-256. A visitor reaches only
// their own contact's conversations and attachments; anything else is
// ErrNotFound, like a missing one.

// NewVisitor is what the widget's pre-chat form sends, with what the
// server learnt from the request.
type NewVisitor struct {
	Name, Email, Phone string
	Facts              Facts
	Pages              []NewPageView
}

// Facts are what the server knows of a visitor's browser (spec rule 11).
type Facts struct {
	Browser, BrowserVersion, OS, IP, Country string
}

// NewPageView is a page of the site viewed by a visitor. At is when; zero,
// or a time far from now, means now.
type NewPageView struct {
	URL, Title, Referrer string
	At                   time.Time
}

// VisitorStart is a new visitor: the token to give them (shown only now),
// when it expires if unused, their contact and their conversation.
type VisitorStart struct {
	Token        string
	ExpiresAt    time.Time
	Contact      Contact
	Conversation Conversation
}

// Limits of what a visitor's browser may make us store.
const (
	maxPageViews     = 200 // kept per contact, the newest
	maxPagesPerStart = 20
	maxURLBytes      = 2048
	maxTitleBytes    = 300
)

// StartVisitor creates, in one transaction, a contact from the pre-chat
// form, a visitor token for it valid for ttl after its last use, its first
// conversation (in Unassigned, rule 1) and the page views it sent.
func (s *Store) StartVisitor(ctx context.Context, in NewVisitor, ttl time.Duration) (VisitorStart, error) {
	// The email is typed, not proved: unverified (threading.go).
	c := Contact{Name: strings.TrimSpace(in.Name), Email: strings.TrimSpace(in.Email), EmailVerified: false,
		Phone: strings.TrimSpace(in.Phone), CreatedAt: s.now()}
	if err := checkContact(&c); err != nil {
		return VisitorStart{}, err
	}
	if c.Name == "" {
		return VisitorStart{}, invalid("name", "is required")
	}
	f := cleanFacts(in.Facts)
	c.Browser, c.BrowserVersion, c.OS, c.IP, c.Country = f.Browser, f.BrowserVersion, f.OS, f.IP, f.Country
	pages, err := s.cleanPages(in.Pages)
	if err != nil {
		return VisitorStart{}, err
	}
	out := VisitorStart{Token: randomToken()}
	err = s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		contact := c
		if err := tx.Create(&contact).Error; err != nil {
			return err
		}
		now := s.now()
		out.ExpiresAt = now.Add(ttl)
		if err := tx.Create(&VisitorSession{ID: tokenID(out.Token), ContactID: contact.ID, CreatedAt: now, ExpiresAt: out.ExpiresAt, LastUsedAt: now}).Error; err != nil {
			return err
		}
		if err := addPageViews(tx, contact.ID, pages); err != nil {
			return err
		}
		conv, err := s.createConversation(tx, contact, ChannelChat, "", evs)
		if err != nil {
			return err
		}
		out.Contact, out.Conversation = contact, conv
		return nil
	})
	if err != nil {
		return VisitorStart{}, err
	}
	out.Contact.CreatedAt = out.Contact.CreatedAt.UTC()
	return out, nil
}

// StartVisitorConversation gives a known visitor a conversation: their
// newest chat conversation if they have any (created false), else a new
// one in Unassigned. The page views are stored either way.
func (s *Store) StartVisitorConversation(ctx context.Context, contactID int64, pagesIn []NewPageView) (Conversation, bool, error) {
	pages, err := s.cleanPages(pagesIn)
	if err != nil {
		return Conversation{}, false, err
	}
	var conv Conversation
	created := false
	err = s.write(ctx, func(tx *gorm.DB, evs *[]Event) error {
		created = false
		q := tx
		if tx.Dialector.Name() == "postgres" {
			// Two tabs pressing Start Chat at once start one conversation.
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var contact Contact
		if err := q.First(&contact, contactID).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrNotFound
			}
			return err
		}
		if err := addPageViews(tx, contactID, pages); err != nil {
			return err
		}
		err := tx.Where("contact_id = ? AND channel = ?", contactID, ChannelChat).Order("id DESC").First(&conv).Error
		if err == nil {
			return nil
		}
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return err
		}
		created = true
		conv, err = s.createConversation(tx, contact, ChannelChat, "", evs)
		return err
	})
	utcConversation(&conv)
	return conv, created, err
}

// VisitorContact returns the contact of a visitor token, or
// ErrUnauthenticated if it is unknown or expired. A use slides the expiry
// to ttl from now; it is recorded once a tenth of ttl (at most a minute)
// has passed since the last time (renewAfter), so that a visitor's
// requests and reconnects do not each write.
func (s *Store) VisitorContact(ctx context.Context, token string, ttl time.Duration) (Contact, error) {
	c, _, err := s.VisitorAuth(ctx, token, ttl)
	return c, err
}

// VisitorAuth is VisitorContact that also returns when the token expires
// (after this use): the widget's socket closes then unless the token was
// used again meanwhile (VisitorSessionExpiry).
func (s *Store) VisitorAuth(ctx context.Context, token string, ttl time.Duration) (Contact, time.Time, error) {
	vc, err := s.VisitorAuthConversation(ctx, token, ttl, 0)
	return vc.Contact, vc.Expires, err
}

// VisitorConnect is what a widget socket's auth reads
// (VisitorAuthConversation).
type VisitorConnect struct {
	Contact Contact
	// Expires is when the token expires, after this use.
	Expires time.Time
	// ConversationID is the contact's current chat conversation
	// (CurrentConversation's); 0 when they have none.
	ConversationID int64
	// Started is set when ConversationID is the caller's hint: then
	// Conversation and Agents are ConversationStart's, read in the same
	// statement.
	Started      bool
	Conversation Conversation
	Agents       []ParticipantAgent
}

// VisitorAuthConversation is VisitorAuth that also returns the contact's
// current conversation, read in the same statement: a widget socket's
// connect needs both, and each read of its own cost a read transaction
// (issue 14: a fifth of a connect's CPU). With hint, the conversation the
// widget resumes (its socket subscribed to it before this read), the same
// statement reads that conversation with its agents too, and Started
// tells whether it is still the current one. ErrUnauthenticated for an
// unknown or expired token.
func (s *Store) VisitorAuthConversation(ctx context.Context, token string, ttl time.Duration, hint int64) (VisitorConnect, error) {
	if token == "" || len(token) > 128 {
		return VisitorConnect{}, ErrUnauthenticated
	}
	var (
		vc       VisitorConnect
		c        = &vc.Contact
		vs       VisitorSession
		lastSeen sql.NullTime
		current  sql.NullInt64
	)
	lead := []any{&c.ID, &c.Name, &c.Email, &c.EmailVerified,
		&c.Phone, &c.Online, &lastSeen, &c.CreatedAt, &c.Browser, &c.BrowserVersion, &c.OS, &c.IP, &c.Country,
		&vs.ID, &vs.ExpiresAt, &vs.LastUsedAt, &current}
	// One read, the session with its contact and their newest chat
	// conversation: it runs for every socket that connects.
	const cols = `c.id, c.name, c.email, c.email_verified, c.phone, c.online, c.last_seen_at,
		c.created_at, c.browser, c.browser_version, c.os, c.ip, c.country,
		vs.id, vs.expires_at, vs.last_used_at,
		(SELECT v.id FROM conversations v WHERE v.contact_id = c.id AND v.channel = ? ORDER BY v.id DESC LIMIT 1)`
	found := false
	if hint > 0 {
		// With the hinted conversation, if it is the contact's, and its
		// agents (ConversationStart); no row: an unknown token, or a
		// conversation of someone else, read as without a hint.
		st, err := s.hot(ctx, `SELECT `+cols+`, `+startColumns+`
			FROM visitor_sessions vs JOIN contacts c ON c.id = vs.contact_id
			JOIN conversations v ON v.id = ? AND v.contact_id = c.id
			LEFT JOIN participants p ON p.conversation_id = v.id AND p.left_at IS NULL
			LEFT JOIN agents a ON a.id = p.agent_id
			WHERE vs.id = ?
			ORDER BY p.responsible DESC, p.joined_at, p.id`)
		if err != nil {
			return VisitorConnect{}, err
		}
		rows, err := st.QueryContext(s.readCtx(ctx), ChannelChat, hint, tokenID(token))
		if err != nil {
			return VisitorConnect{}, dbErr(err)
		}
		if vc.Conversation, vc.Agents, found, err = scanStart(rows, lead...); err != nil {
			return VisitorConnect{}, err
		}
		vc.Started = found && current.Valid && current.Int64 == hint
	}
	if !found {
		st, err := s.hot(ctx, `SELECT `+cols+` FROM visitor_sessions vs JOIN contacts c ON c.id = vs.contact_id WHERE vs.id = ?`)
		if err != nil {
			return VisitorConnect{}, err
		}
		err = st.QueryRowContext(s.readCtx(ctx), ChannelChat, tokenID(token)).Scan(lead...)
		if errors.Is(err, sql.ErrNoRows) {
			return VisitorConnect{}, ErrUnauthenticated
		}
		if err != nil {
			return VisitorConnect{}, dbErr(err)
		}
	}
	if !vc.Started {
		vc.Conversation, vc.Agents = Conversation{}, nil
	}
	if lastSeen.Valid {
		t := lastSeen.Time.UTC()
		c.LastSeenAt = &t
	}
	vs.ContactID = c.ID
	vc.ConversationID = current.Int64
	now := s.now()
	if !now.Before(vs.ExpiresAt) {
		return VisitorConnect{}, ErrUnauthenticated
	}
	vc.Expires = vs.ExpiresAt.UTC()
	if now.Sub(vs.LastUsedAt) > renewAfter(ttl) {
		vc.Expires = now.Add(ttl)
		if err := s.recordUse(vs.ID, ttl); err != nil {
			return VisitorConnect{}, err
		}
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return vc, nil
}

// tokenUses writes visitor token uses by group commit: a use that finds
// another's write in flight queues and waits, and the next write takes
// every queued use in one statement. A reconnect storm of thousands of
// tokens last recorded over renewAfter ago (every widget after a
// restart) is then a few writes, not one transaction each, and each
// caller still returns once its use is stored.
type tokenUses struct {
	mu      sync.Mutex
	writing bool
	queue   []*tokenUse
}

type tokenUse struct {
	id   string
	ttl  time.Duration
	done chan error // the write's result, or errLeadUses
}

// errLeadUses tells a queued use that it writes the next batch.
var errLeadUses = errors.New("inbox: write the queued token uses")

// maxUsesPerWrite bounds the ids of one UPDATE (SQLite's and
// PostgreSQL's limits on bound parameters are far above it).
const maxUsesPerWrite = 1000

// recordUse stores a use of visitor session id now: last used now,
// expiring ttl from now (or from a moment later, when the write that
// carries it starts). It returns the write's error (dbErr).
func (s *Store) recordUse(id string, ttl time.Duration) error {
	u := &tokenUse{id: id, ttl: ttl, done: make(chan error, 1)}
	w := &s.uses
	w.mu.Lock()
	w.queue = append(w.queue, u)
	if w.writing {
		w.mu.Unlock()
		// Waits whatever the caller's context: a queued use may be
		// handed the next write, which others then wait for.
		if err := <-u.done; err != errLeadUses {
			return err
		}
		w.mu.Lock()
	}
	w.writing = true
	batch := w.queue
	w.queue = nil
	w.mu.Unlock()

	err := s.writeUses(batch)
	var mine error
	for _, b := range batch {
		if b == u {
			mine = err
			continue
		}
		b.done <- err
	}
	w.mu.Lock()
	if len(w.queue) > 0 {
		w.queue[0].done <- errLeadUses // it takes the whole queue
	} else {
		w.writing = false
	}
	w.mu.Unlock()
	return mine
}

// writeUses stores a batch of uses, one UPDATE per ttl and per
// maxUsesPerWrite ids, with a deadline of its own: its callers' contexts
// differ.
func (s *Store) writeUses(batch []*tokenUse) error {
	if s.beforeUses != nil {
		s.beforeUses(len(batch))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := s.now()
	byTTL := map[time.Duration][]string{}
	for _, u := range batch {
		byTTL[u.ttl] = append(byTTL[u.ttl], u.id)
	}
	for ttl, ids := range byTTL {
		for len(ids) > 0 {
			n := min(len(ids), maxUsesPerWrite)
			if err := s.db.WithContext(ctx).Model(&VisitorSession{}).Where("id IN ?", ids[:n]).
				Updates(map[string]any{"last_used_at": now, "expires_at": now.Add(ttl)}).Error; err != nil {
				return dbErr(err)
			}
			ids = ids[n:]
		}
	}
	return nil
}

// renewAfter is how long after its last recorded use a visitor token's
// use is recorded again (and its expiry moved to ttl from now): a tenth
// of ttl, at most a minute, so that a busy widget writes its session at
// most once a minute, and a token with a short ttl still slides with
// every use that matters (docs/widget-protocol.md: valid for ttl after
// its last use, give or take a tenth).
func renewAfter(ttl time.Duration) time.Duration {
	return min(ttl/10, time.Minute)
}

// VisitorSessionExpiry returns when the visitor token of id (SessionID of
// the token) expires, as stored: later than a socket last read if the
// token was used since. It is not a use. ErrUnauthenticated if the token
// is gone or expired.
func (s *Store) VisitorSessionExpiry(ctx context.Context, id string) (time.Time, error) {
	var vs []VisitorSession
	if err := s.rdb.WithContext(ctx).Where("id = ?", id).Limit(1).Find(&vs).Error; err != nil {
		return time.Time{}, dbErr(err)
	}
	if len(vs) == 0 || !s.now().Before(vs[0].ExpiresAt) {
		return time.Time{}, ErrUnauthenticated
	}
	return vs[0].ExpiresAt.UTC(), nil
}

// RevokeVisitorToken forgets a visitor token; the contact stays. Its
// sockets close at once (a Revoked notice after the commit).
func (s *Store) RevokeVisitorToken(ctx context.Context, token string) error {
	id := tokenID(token)
	if err := s.db.WithContext(ctx).Where("id = ?", id).Delete(&VisitorSession{}).Error; err != nil {
		return dbErr(err)
	}
	s.pub.Revoke(Revoked{VisitorSessionID: id})
	return nil
}

// CurrentConversation returns the contact's newest chat conversation, the
// one the widget shows; ErrNotFound if they have none. A conversation
// that began by email is never the widget's, even when the contact is
// the same: the widget session has not proved it receives that mail
// (issue 12, item 5); mail that proved it continues the chat
// conversation instead (threading.go).
func (s *Store) CurrentConversation(ctx context.Context, contactID int64) (Conversation, error) {
	var c Conversation
	err := s.rdb.WithContext(ctx).Where("contact_id = ? AND channel = ?", contactID, ChannelChat).Order("id DESC").First(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return c, ErrNotFound
	}
	utcConversation(&c)
	return c, dbErr(err)
}

// AddPageView records a page viewed by the contact, keeping their newest
// 200. The URL must be an absolute http(s) URL; long values are cut.
func (s *Store) AddPageView(ctx context.Context, contactID int64, p NewPageView) error {
	pages, err := s.cleanPages([]NewPageView{p})
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		var n int64
		if err := tx.Model(&Contact{}).Where("id = ?", contactID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return addPageViews(tx, contactID, pages)
	})
}

func addPageViews(tx *gorm.DB, contactID int64, pages []PageView) error {
	if len(pages) == 0 {
		return nil
	}
	for i := range pages {
		pages[i].ContactID = contactID
	}
	if err := tx.Create(&pages).Error; err != nil {
		return err
	}
	return tx.Exec(`DELETE FROM page_views WHERE contact_id = ? AND id NOT IN
		(SELECT id FROM page_views WHERE contact_id = ? ORDER BY id DESC LIMIT ?)`, contactID, contactID, maxPageViews).Error
}

// cleanPages checks and bounds page views from a browser: at most 20, an
// absolute http(s) URL each, single lines of user text (SingleLine), long
// texts cut, a time within a day of now.
func (s *Store) cleanPages(in []NewPageView) ([]PageView, error) {
	if len(in) > maxPagesPerStart {
		in = in[len(in)-maxPagesPerStart:]
	}
	now := s.now()
	out := make([]PageView, 0, len(in))
	for _, p := range in {
		var err error
		for _, f := range []struct {
			name string
			v    *string
		}{{"url", &p.URL}, {"title", &p.Title}, {"referrer", &p.Referrer}} {
			if *f.v, err = SingleLine(f.name, *f.v); err != nil {
				return nil, err
			}
		}
		u := cut(p.URL, maxURLBytes)
		if !httpURL(u) {
			return nil, invalid("url", "must be an absolute http or https URL")
		}
		ref := cut(p.Referrer, maxURLBytes)
		if !httpURL(ref) {
			ref = ""
		}
		at := p.At.UTC().Truncate(time.Microsecond)
		if at.IsZero() || at.After(now.Add(time.Minute)) || at.Before(now.Add(-24*time.Hour)) {
			at = now
		}
		out = append(out, PageView{URL: u, Title: cut(p.Title, maxTitleBytes), Referrer: ref, ViewedAt: at})
	}
	return out, nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// cut makes s valid UTF-8 without control characters, trimmed, and at
// most n bytes long, cutting at a character boundary.
func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

func cleanFacts(f Facts) Facts {
	return Facts{Browser: cut(f.Browser, 100), BrowserVersion: cut(f.BrowserVersion, 50), OS: cut(f.OS, 100),
		IP: cut(f.IP, 64), Country: cut(f.Country, 8)}
}

// PageViews returns the contact's page views, the newest first, at most
// limit (1 to 200).
func (s *Store) PageViews(ctx context.Context, contactID int64, limit int) ([]PageView, error) {
	if limit <= 0 || limit > maxPageViews {
		limit = maxPageViews
	}
	views := []PageView{}
	err := s.rdb.WithContext(ctx).Where("contact_id = ?", contactID).Order("id DESC").Limit(limit).Find(&views).Error
	for i := range views {
		views[i].ViewedAt = views[i].ViewedAt.UTC()
	}
	return views, dbErr(err)
}

// SetContactFacts stores what the server learnt of the visitor's browser
// and returns whether anything changed; unchanged facts cost no write.
func (s *Store) SetContactFacts(ctx context.Context, contactID int64, in Facts) (bool, error) {
	f := cleanFacts(in)
	changed := false
	err := s.contactChange(ctx, contactID, func(tx *gorm.DB) (bool, error) {
		res := tx.Model(&Contact{}).
			Where("id = ? AND NOT (browser = ? AND browser_version = ? AND os = ? AND ip = ? AND country = ?)",
				contactID, f.Browser, f.BrowserVersion, f.OS, f.IP, f.Country).
			Updates(map[string]any{"browser": f.Browser, "browser_version": f.BrowserVersion, "os": f.OS, "ip": f.IP, "country": f.Country})
		changed = res.RowsAffected > 0
		return changed, res.Error
	})
	return changed, err
}

// contactChange runs change, which updates the contact and says whether
// anything changed, and owes webhooks contact.updated for a change: in
// one transaction when some webhook may want it, else as one statement.
func (s *Store) contactChange(ctx context.Context, contactID int64, change func(tx *gorm.DB) (bool, error)) error {
	if !s.hooksMaybe() {
		_, err := change(s.db.WithContext(ctx))
		return dbErr(err)
	}
	return dbErr(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		changed, err := change(tx)
		if err != nil || !changed {
			return err
		}
		return s.contactUpdatedHook(tx, contactID)
	}))
}

// contactUpdatedHook owes webhooks contact.updated with the contact as tx
// reads it.
func (s *Store) contactUpdatedHook(tx *gorm.DB, contactID int64) error {
	if !s.hooksMaybe() {
		return nil
	}
	var c Contact
	if err := tx.First(&c, contactID).Error; err != nil {
		return err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	if c.LastSeenAt != nil {
		t := c.LastSeenAt.UTC()
		c.LastSeenAt = &t
	}
	return s.contactHook(tx, HookContactUpdated, contactID, HookContactData{Contact: c})
}

// ContactPatch changes the fields of a contact that are set.
type ContactPatch struct {
	Name  *string
	Email *string
	Phone *string
}

// UpdateContact changes a contact's name, email or phone, checked as
// CreateContact's (*InvalidError); a changed email is no longer verified
// (rule 8: an address typed proves nothing). ErrNotFound. Webhooks are
// owed contact.updated when anything changed.
func (s *Store) UpdateContact(ctx context.Context, id int64, p ContactPatch) (Contact, error) {
	var out Contact
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		c, err := lockContact(tx, id)
		if err != nil {
			return err
		}
		next := c
		if p.Name != nil {
			next.Name = *p.Name
		}
		if p.Email != nil {
			next.Email = *p.Email
		}
		if p.Phone != nil {
			next.Phone = *p.Phone
		}
		if err := checkContact(&next); err != nil {
			return err
		}
		if next.Email != c.Email {
			next.EmailVerified = false
		}
		out = next
		if next.Name == c.Name && next.Email == c.Email && next.Phone == c.Phone {
			return nil
		}
		if err := tx.Model(&Contact{}).Where("id = ?", id).Updates(map[string]any{"name": next.Name, "email": next.Email,
			"phone": next.Phone, "email_verified": next.EmailVerified}).Error; err != nil {
			return err
		}
		return s.contactUpdatedHook(tx, id)
	})
	if err != nil {
		return Contact{}, dbErr(err)
	}
	out.CreatedAt = out.CreatedAt.UTC()
	return out, nil
}

// ContactDetail is a contact with the pages they viewed, the newest first,
// and their conversations, as an agent sees them.
type ContactDetail struct {
	Contact
	PageViews []PageView `json:"page_views"`
	// Conversations are the contact's conversations, the newest first
	// (by id: the order they began in), at most maxContactConversations.
	Conversations []ContactConversation `json:"conversations"`
}

// ContactConversation is one of a contact's conversations as the visitor
// panel lists them.
type ContactConversation struct {
	ID             int64     `json:"id"`
	Status         string    `json:"status"`
	Subject        string    `json:"subject"`
	Channel        string    `json:"channel"` // origin: chat or email
	HasEmail       bool      `json:"has_email"`
	LastActivityAt time.Time `json:"last_activity_at"`
	CreatedAt      time.Time `json:"created_at"`
}

// maxContactConversations bounds ContactDetail.Conversations.
const maxContactConversations = 50

// ContactDetail returns a contact with their latest 100 page views and
// their newest 50 conversations (read through the index on
// conversations.contact_id).
func (s *Store) ContactDetail(ctx context.Context, id int64) (ContactDetail, error) {
	c, err := s.Contact(ctx, id)
	if err != nil {
		return ContactDetail{}, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	views, err := s.PageViews(ctx, id, 100)
	if err != nil {
		return ContactDetail{}, err
	}
	convs := []ContactConversation{}
	if err := s.rdb.WithContext(ctx).Model(&Conversation{}).
		Select("id, status, subject, channel, has_email, last_activity_at, created_at").
		Where("contact_id = ?", id).Order("id DESC").Limit(maxContactConversations).Scan(&convs).Error; err != nil {
		return ContactDetail{}, dbErr(err)
	}
	for i := range convs {
		convs[i].LastActivityAt, convs[i].CreatedAt = convs[i].LastActivityAt.UTC(), convs[i].CreatedAt.UTC()
	}
	return ContactDetail{Contact: c, PageViews: views, Conversations: convs}, nil
}

// Rating returns the conversation's rating, or nil if it has none.
func (s *Store) Rating(ctx context.Context, conversationID int64) (*Rating, error) {
	var r []Rating
	if err := s.rdb.WithContext(ctx).Where("conversation_id = ?", conversationID).Order("id DESC").Limit(1).Find(&r).Error; err != nil {
		return nil, dbErr(err)
	}
	if len(r) == 0 {
		return nil, nil
	}
	r[0].CreatedAt = r[0].CreatedAt.UTC()
	return &r[0], nil
}

// OpenContactAttachment returns an attachment with its bytes if it belongs
// to one of the contact's chat conversations (the widget's, see
// CurrentConversation) and was sent with a message or uploaded by the
// contact; otherwise (an agent's unsent upload above all) ErrNotFound, as
// if it did not exist. A bounce's report (uploaded by AuthorSystem) is
// never the contact's: it is a raw mail that quotes the headers of ours,
// Cc included, which the widget never shows (issue 12, item 5). Nor is
// an attachment of a private note (ChannelNote).
func (s *Store) OpenContactAttachment(ctx context.Context, contactID, id int64) (Attachment, error) {
	var a Attachment
	err := s.rdb.WithContext(ctx).
		Where("id = ? AND conversation_id IN (SELECT id FROM conversations WHERE contact_id = ? AND channel = ?)", id, contactID, ChannelChat).
		Where("message_id IS NOT NULL OR uploader = ?", AuthorContact).
		Where("COALESCE(uploader, '') <> ?", AuthorSystem).
		Where("NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = attachments.message_id AND m.channel = ?)", ChannelNote).
		First(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return a, ErrNotFound
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return a, dbErr(err)
}

// LiveVisitorSessions returns, of the visitor token ids given
// (VisitorSession.ID), those that still exist and have not expired, with
// their expiry: the others ended. It reads 500 ids at a time. A node
// that may have missed Revoked notices checks its sockets with it
// (sockets.Options.Live, after Hub.OnResync).
func (s *Store) LiveVisitorSessions(ctx context.Context, ids []string) (map[string]time.Time, error) {
	return s.liveCredentials(ctx, ids, func(chunk []string) *gorm.DB {
		return s.rdb.WithContext(ctx).Model(&VisitorSession{}).Select("id, expires_at").Where("id IN ?", chunk)
	})
}

// LiveSessions returns, of the agent session ids given (Session.ID), those
// that still exist, have not expired and whose agent is not removed, with
// their expiry, as LiveVisitorSessions does for visitor tokens.
func (s *Store) LiveSessions(ctx context.Context, ids []string) (map[string]time.Time, error) {
	return s.liveCredentials(ctx, ids, func(chunk []string) *gorm.DB {
		return s.rdb.WithContext(ctx).Table("sessions").Select("sessions.id, sessions.expires_at").
			Joins("JOIN agents a ON a.id = sessions.agent_id AND a.deactivated_at IS NULL").
			Where("sessions.id IN ?", chunk)
	})
}

func (s *Store) liveCredentials(ctx context.Context, ids []string, query func(chunk []string) *gorm.DB) (map[string]time.Time, error) {
	live := make(map[string]time.Time, len(ids))
	now := s.now()
	for len(ids) > 0 {
		chunk := ids[:min(500, len(ids))]
		ids = ids[len(chunk):]
		var rows []struct {
			ID        string
			ExpiresAt time.Time
		}
		if err := query(chunk).Scan(&rows).Error; err != nil {
			return nil, dbErr(err)
		}
		for _, r := range rows {
			if now.Before(r.ExpiresAt) {
				live[r.ID] = r.ExpiresAt.UTC()
			}
		}
	}
	return live, nil
}
