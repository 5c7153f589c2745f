package inbox

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Outgoing webhooks (issue 15): an admin registers a URL and the events
// it wants; every change of those kinds becomes a delivery, a row of
// webhook_deliveries inserted in the very transaction of the change, so
// that a change committed is a delivery owed and a change rolled back is
// none. The webhook worker (package webhook) sends deliveries and records
// their outcome here:
//
//   - A delivery belongs to a stream: the conversation whose change it
//     tells (its id), or the contact (minus its id) for the contact
//     events. Within a stream deliveries go in order (Ord: the change's
//     sequence number), one at a time: a delivery waiting for a retry
//     holds the ones after it (DueDeliveries).
//   - A delivery that succeeded is deleted; one that failed is retried
//     (DeliveryFailed with a next time) until the worker gives it up
//     (final), then it stays, HookFailed, for admins to see and replay
//     (WebhookDeliveries, ReplayDelivery).
//   - The delivery's id is stable across its retries and a replay: the
//     receiver's webhook-id (Standard Webhooks), by which it drops
//     duplicates (at least once: a node that dies mid-send sends again).
//
// Which webhooks want a change is decided by the database in the same
// statement that inserts the deliveries (an INSERT ... SELECT over the
// enabled webhooks), so a webhook added or disabled counts from the next
// commit on every node. Only whether any webhook exists at all is kept in
// memory (hooksOn), to spare the chat path that statement when none does;
// it is refreshed on every change, by a notice to the other nodes
// (Revoked.Webhooks), when the bus hears again, and every
// hooksRefreshEvery.

// Webhook event types: a delivery's "type" and what a webhook subscribes
// to (issue 15 item 1).
const (
	HookConversationCreated  = "conversation.created"
	HookConversationAssigned = "conversation.assigned" // an agent joined
	HookConversationClosed   = "conversation.closed"
	HookConversationReopened = "conversation.reopened"
	HookMessageCreated       = "message.created" // contact's, agent's, or a private note (private: true)
	HookMessageFailed        = "message.failed"  // an email reply that could not be delivered
	HookRatingCreated        = "rating.created"
	HookContactUpdated       = "contact.updated"
	HookContactErased        = "contact.erased"
)

// HookEvents are the webhook event types, in the order documents list
// them.
var HookEvents = []string{
	HookConversationCreated, HookConversationAssigned, HookConversationClosed, HookConversationReopened,
	HookMessageCreated, HookMessageFailed, HookRatingCreated, HookContactUpdated, HookContactErased,
}

// Delivery states. A delivery that succeeded is deleted.
const (
	HookPending = "pending" // due at NextAt, or held by an earlier one of its stream
	HookFailed  = "failed"  // given up: kept for admins to replay
)

// Bounds of a webhook.
const (
	// MaxWebhookName is the longest name, in characters.
	MaxWebhookName = 100
	// MaxWebhookURL is the longest URL, in bytes.
	MaxWebhookURL = 2048
	// maxHookExcerpt is the longest answer excerpt kept, in bytes.
	maxHookExcerpt = 1024
)

// hooksRefreshEvery is how often a node reads again whether any webhook
// is enabled, should a notice have been missed.
const hooksRefreshEvery = 10 * time.Second

// Webhook is an admin's registered endpoint, without its secrets.
type Webhook struct {
	ID int64 `json:"id"`
	// Name is a single line of 1 to MaxWebhookName characters, unique.
	Name string `json:"name"`
	// URL is the absolute http or https URL deliveries are POSTed to.
	URL string `json:"url"`
	// Events are the webhook event types it wants (HookEvents).
	Events  []string `json:"events"`
	Enabled bool     `json:"enabled"`
	// FromConfig says the config file lists it: it is changed there, not
	// through the API (ErrForbidden).
	FromConfig bool `json:"from_config"`
	// PreviousSecretUntil is when the secret replaced by the last
	// rotation stops signing deliveries; nil when only one signs.
	PreviousSecretUntil *time.Time `json:"previous_secret_until"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	// LastSuccessAt and LastFailureAt are the last delivery attempts
	// that succeeded and failed, LastError the failure's reason.
	LastSuccessAt *time.Time `json:"last_success_at"`
	LastFailureAt *time.Time `json:"last_failure_at"`
	LastError     string     `json:"last_error"`
	// Pending and Failed count its deliveries in each state (Webhooks,
	// Webhook only).
	Pending int64 `json:"pending"`
	Failed  int64 `json:"failed"`
}

// webhookRow is a webhooks row (migration 0019).
type webhookRow struct {
	ID                  int64
	Name                string
	URL                 string `gorm:"column:url"`
	Events              string // ",a,b,": matched with the delimiters
	Enabled             bool
	Secret              string
	PreviousSecret      string
	PreviousSecretUntil *time.Time
	FromConfig          bool
	CreatedAt           time.Time
	UpdatedAt           time.Time
	LastSuccessAt       *time.Time
	LastFailureAt       *time.Time
	LastError           string
}

func (webhookRow) TableName() string { return "webhooks" }

func (r webhookRow) webhook() Webhook {
	w := Webhook{ID: r.ID, Name: r.Name, URL: r.URL, Enabled: r.Enabled, FromConfig: r.FromConfig,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), LastError: r.LastError,
		PreviousSecretUntil: utcPtr(r.PreviousSecretUntil), LastSuccessAt: utcPtr(r.LastSuccessAt), LastFailureAt: utcPtr(r.LastFailureAt)}
	w.Events = []string{}
	for _, e := range strings.Split(strings.Trim(r.Events, ","), ",") {
		if e != "" {
			w.Events = append(w.Events, e)
		}
	}
	return w
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// NewWebhook is what an admin (or the config file) gives to make a
// webhook.
type NewWebhook struct {
	Name    string
	URL     string
	Events  []string
	Enabled bool
	// Secret signs the deliveries (whsec_ and base64, Standard
	// Webhooks); CreateWebhook makes one when empty.
	Secret string
}

// WebhookPatch changes the fields that are set.
type WebhookPatch struct {
	Name    *string
	URL     *string
	Events  *[]string
	Enabled *bool
}

// WebhookSecrets are the secrets that sign a webhook's deliveries now:
// Current, and Previous during a rotation (until PreviousSecretUntil).
type WebhookSecrets struct {
	Current  string
	Previous string
}

// List returns the secrets to sign with, the current first.
func (s WebhookSecrets) List() []string {
	if s.Previous == "" {
		return []string{s.Current}
	}
	return []string{s.Current, s.Previous}
}

// NewWebhookSecret makes a webhook secret: "whsec_" and the standard
// base64 of 32 random bytes, the form Standard Webhooks gives secrets.
func NewWebhookSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

func cleanWebhook(name, rawURL string, events []string) (string, string, string, error) {
	name, err := SingleLine("name", name)
	if err != nil {
		return "", "", "", err
	}
	if n := len([]rune(name)); n < 1 || n > MaxWebhookName {
		return "", "", "", invalid("name", "must be 1 to %d characters", MaxWebhookName)
	}
	rawURL = strings.TrimSpace(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil || len(rawURL) > MaxWebhookURL || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", "", "", invalid("url", "must be an absolute http or https URL of at most %d bytes, without a user name", MaxWebhookURL)
	}
	if len(events) == 0 {
		return "", "", "", invalid("events", "must name at least one of %s", strings.Join(HookEvents, ", "))
	}
	var set []string
	for _, e := range events {
		if !slices.Contains(HookEvents, e) {
			return "", "", "", invalid("events", "%q is not one of %s", e, strings.Join(HookEvents, ", "))
		}
		if !slices.Contains(set, e) {
			set = append(set, e)
		}
	}
	slices.SortFunc(set, func(a, b string) int { return slices.Index(HookEvents, a) - slices.Index(HookEvents, b) })
	return name, rawURL, "," + strings.Join(set, ",") + ",", nil
}

func (s *Store) hookSecret(secret string) (string, error) {
	if secret == "" {
		return NewWebhookSecret(), nil
	}
	if !strings.HasPrefix(secret, "whsec_") || len(secret) < 30 || len(secret) > 200 {
		return "", invalid("secret", "must be whsec_ followed by the base64 of 24 to 64 random bytes")
	}
	return secret, nil
}

// CreateWebhook stores a new webhook and returns it with its secret,
// made when in.Secret is empty. *InvalidError for a name, url, events or
// secret that will not do; *ConflictError for a name in use. The URL's
// address is not checked here: the caller checks it (package webhook's
// Guard) now and the worker at every attempt.
func (s *Store) CreateWebhook(ctx context.Context, in NewWebhook) (Webhook, string, error) {
	return s.createWebhook(ctx, in, false)
}

func (s *Store) createWebhook(ctx context.Context, in NewWebhook, fromConfig bool) (Webhook, string, error) {
	name, u, events, err := cleanWebhook(in.Name, in.URL, in.Events)
	if err != nil {
		return Webhook{}, "", err
	}
	secret, err := s.hookSecret(in.Secret)
	if err != nil {
		return Webhook{}, "", err
	}
	now := s.now()
	row := webhookRow{Name: name, URL: u, Events: events, Enabled: in.Enabled, Secret: secret, FromConfig: fromConfig, CreatedAt: now, UpdatedAt: now}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		if isDuplicate(err) {
			return Webhook{}, "", &ConflictError{Field: "name", Reason: "a webhook of that name exists"}
		}
		return Webhook{}, "", dbErr(err)
	}
	s.hooksChanged(ctx)
	return row.webhook(), secret, nil
}

// Webhooks returns every webhook, by id, with its delivery counts.
func (s *Store) Webhooks(ctx context.Context) ([]Webhook, error) {
	return s.webhooks(ctx, 0, true)
}

// Webhook returns one webhook with its delivery counts; ErrNotFound.
func (s *Store) Webhook(ctx context.Context, id int64) (Webhook, error) {
	list, err := s.webhooks(ctx, id, true)
	if err != nil {
		return Webhook{}, err
	}
	if len(list) == 0 {
		return Webhook{}, ErrNotFound
	}
	return list[0], nil
}

// webhooks reads the webhook id, or all (id 0), with their delivery
// counts when counts is set (a scan of their deliveries' index).
func (s *Store) webhooks(ctx context.Context, id int64, counts bool) ([]Webhook, error) {
	q := s.rdb.WithContext(ctx).Order("id")
	if id != 0 {
		q = q.Where("id = ?", id)
	}
	var rows []webhookRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, dbErr(err)
	}
	var n []struct {
		WebhookID int64
		State     string
		N         int64
	}
	if counts && len(rows) > 0 {
		q := `SELECT webhook_id, state, count(*) AS n FROM webhook_deliveries GROUP BY webhook_id, state`
		args := []any{}
		if id != 0 {
			q = `SELECT webhook_id, state, count(*) AS n FROM webhook_deliveries WHERE webhook_id = ? GROUP BY webhook_id, state`
			args = append(args, id)
		}
		if err := s.rdb.WithContext(ctx).Raw(q, args...).Scan(&n).Error; err != nil {
			return nil, dbErr(err)
		}
	}
	out := make([]Webhook, 0, len(rows))
	for _, r := range rows {
		w := r.webhook()
		for _, c := range n {
			if c.WebhookID != w.ID {
				continue
			}
			if c.State == HookPending {
				w.Pending = c.N
			} else {
				w.Failed = c.N
			}
		}
		out = append(out, w)
	}
	return out, nil
}

// WebhookSecrets returns the secrets that sign the webhook's deliveries
// now (the previous one only until PreviousSecretUntil); ErrNotFound.
func (s *Store) WebhookSecrets(ctx context.Context, id int64) (WebhookSecrets, error) {
	var r webhookRow
	if err := s.rdb.WithContext(ctx).First(&r, id).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return WebhookSecrets{}, ErrNotFound
		}
		return WebhookSecrets{}, dbErr(err)
	}
	sec := WebhookSecrets{Current: r.Secret}
	if r.PreviousSecret != "" && r.PreviousSecretUntil != nil && s.now().Before(*r.PreviousSecretUntil) {
		sec.Previous = r.PreviousSecret
	}
	return sec, nil
}

// lockWebhook reads a webhook for a change by the API: ErrNotFound, or
// *ForbiddenError for one of the config file's.
func lockWebhook(tx *gorm.DB, id int64) (webhookRow, error) {
	r, err := lockRow[webhookRow](tx, id)
	if err != nil {
		return r, err
	}
	if r.FromConfig {
		return r, &ForbiddenError{Field: "webhook", Reason: "it is listed in the config file: change it there"}
	}
	return r, nil
}

// UpdateWebhook changes a webhook; errors as CreateWebhook's, and
// ErrNotFound, or *ForbiddenError for a webhook of the config file.
func (s *Store) UpdateWebhook(ctx context.Context, id int64, p WebhookPatch) (Webhook, error) {
	var out webhookRow
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := lockWebhook(tx, id)
		if err != nil {
			return err
		}
		name, u, events := r.Name, r.URL, r.webhook().Events
		if p.Name != nil {
			name = *p.Name
		}
		if p.URL != nil {
			u = *p.URL
		}
		if p.Events != nil {
			events = *p.Events
		}
		if r.Name, r.URL, r.Events, err = cleanWebhook(name, u, events); err != nil {
			return err
		}
		if p.Enabled != nil {
			r.Enabled = *p.Enabled
		}
		r.UpdatedAt = s.now()
		if err := tx.Save(&r).Error; err != nil {
			if isDuplicate(err) {
				return &ConflictError{Field: "name", Reason: "a webhook of that name exists"}
			}
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return Webhook{}, dbErr(err)
	}
	s.hooksChanged(ctx)
	return out.webhook(), nil
}

// DeleteWebhook deletes a webhook and its deliveries; ErrNotFound, or
// *ForbiddenError for one of the config file's.
func (s *Store) DeleteWebhook(ctx context.Context, id int64) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := lockWebhook(tx, id); err != nil {
			return err
		}
		if err := tx.Exec(`DELETE FROM webhook_deliveries WHERE webhook_id = ?`, id).Error; err != nil {
			return err
		}
		return tx.Delete(&webhookRow{}, id).Error
	})
	if err != nil {
		return dbErr(err)
	}
	s.hooksChanged(ctx)
	return nil
}

// RotateWebhookSecret gives the webhook a new secret and returns it; the
// one it replaces goes on signing deliveries beside it for overlap (0:
// not at all), so that receivers can move to the new one without
// refusing a delivery (Standard Webhooks: several signatures, one per
// secret). overlap is at most 7 days (*InvalidError "overlap").
// ErrNotFound, or *ForbiddenError for a webhook of the config file
// (whose secret is the file's).
func (s *Store) RotateWebhookSecret(ctx context.Context, id int64, overlap time.Duration) (string, error) {
	if overlap < 0 || overlap > 7*24*time.Hour {
		return "", invalid("overlap", "must be 0 to 7 days")
	}
	secret, err := s.hookSecret("")
	if err != nil {
		return "", err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := lockWebhook(tx, id)
		if err != nil {
			return err
		}
		now := s.now()
		r.PreviousSecret, r.PreviousSecretUntil = "", nil
		if overlap > 0 {
			until := now.Add(overlap)
			r.PreviousSecret, r.PreviousSecretUntil = r.Secret, &until
		}
		r.Secret, r.UpdatedAt = secret, now
		return tx.Save(&r).Error
	})
	if err != nil {
		return "", dbErr(err)
	}
	return secret, nil
}

// SyncConfigWebhooks makes the config file's webhooks (FromConfig) those
// of in, by name: new ones are added, listed ones updated (URL, events,
// enabled, secret: a changed secret replaces the old one at once), and
// those no longer listed deleted with their deliveries. A webhook of that
// name made through the API is taken over by the file. Errors as
// CreateWebhook's, for the first webhook that will not do.
func (s *Store) SyncConfigWebhooks(ctx context.Context, in []NewWebhook) error {
	type clean struct {
		NewWebhook
		events string
	}
	var want []clean
	for _, w := range in {
		name, u, events, err := cleanWebhook(w.Name, w.URL, w.Events)
		if err != nil {
			return err
		}
		if w.Secret == "" {
			return invalid("secret", "webhook %q of the config file has no secret", name)
		}
		if _, err := s.hookSecret(w.Secret); err != nil {
			return err
		}
		w.Name, w.URL = name, u
		want = append(want, clean{w, events})
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []webhookRow
		if err := tx.Find(&rows).Error; err != nil {
			return err
		}
		now := s.now()
		for _, w := range want {
			i := slices.IndexFunc(rows, func(r webhookRow) bool { return r.Name == w.Name })
			if i < 0 {
				r := webhookRow{Name: w.Name, URL: w.URL, Events: w.events, Enabled: w.Enabled, Secret: w.Secret, FromConfig: true, CreatedAt: now, UpdatedAt: now}
				if err := tx.Create(&r).Error; err != nil {
					return err
				}
				continue
			}
			r := rows[i]
			if r.URL == w.URL && r.Events == w.events && r.Enabled == w.Enabled && r.Secret == w.Secret && r.FromConfig {
				continue
			}
			if r.Secret != w.Secret {
				r.PreviousSecret, r.PreviousSecretUntil = "", nil
			}
			r.URL, r.Events, r.Enabled, r.Secret, r.FromConfig, r.UpdatedAt = w.URL, w.events, w.Enabled, w.Secret, true, now
			if err := tx.Save(&r).Error; err != nil {
				return err
			}
		}
		for _, r := range rows {
			if !r.FromConfig || slices.ContainsFunc(want, func(w clean) bool { return w.Name == r.Name }) {
				continue
			}
			if err := tx.Exec(`DELETE FROM webhook_deliveries WHERE webhook_id = ?`, r.ID).Error; err != nil {
				return err
			}
			if err := tx.Delete(&webhookRow{}, r.ID).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return dbErr(err)
	}
	s.hooksChanged(ctx)
	return nil
}

// hooksChanged reads again whether any webhook is enabled and tells the
// other nodes to.
func (s *Store) hooksChanged(ctx context.Context) {
	s.refreshHooks(ctx)
	s.pub.Revoke(Revoked{Webhooks: true})
}

// refreshHooks reads whether any webhook is enabled into hooksOn. A
// database that does not answer leaves it on, so that no delivery is
// missed for want of knowing.
func (s *Store) refreshHooks(ctx context.Context) {
	var n int64
	err := s.rdb.WithContext(ctx).Model(&webhookRow{}).Where("enabled").Count(&n).Error
	s.hooksOn.Store(err != nil || n > 0)
	s.hooksRead.Store(s.opts.Now().UnixNano())
}

// hooksMaybe says whether a change must insert its deliveries: some
// webhook is enabled, as far as this node knows. What it knows is read
// again once it is hooksRefreshEvery old, or after a notice made it stale.
func (s *Store) hooksMaybe() bool {
	if time.Duration(s.opts.Now().UnixNano()-s.hooksRead.Load()) > hooksRefreshEvery {
		s.refreshHooks(context.Background())
	}
	return s.hooksOn.Load()
}

// watchHooks reads whether any webhook is enabled, and has it read again
// at the next change after a notice (hooksChanged, on any node) or once
// the bus hears again after it was deaf.
func (s *Store) watchHooks() {
	s.refreshHooks(context.Background())
	stale := func() {
		s.hooksOn.Store(true) // until read again: never miss one
		s.hooksRead.Store(0)
	}
	s.stopHooks = append(s.stopHooks,
		s.hub.OnRevoked(func(r Revoked) {
			if r.Webhooks {
				stale()
			}
		}),
		s.hub.OnResync(stale))
}

// unwatchHooks ends watchHooks.
func (s *Store) unwatchHooks() {
	for _, stop := range s.stopHooks {
		stop()
	}
	s.stopHooks = nil
}

// hookRow is one change that webhooks may want: a webhook event type, the
// stored event it tells (nil for the contact events, which carry Data),
// its stream and its place in it.
type hookRow struct {
	typ    string
	event  *int64
	stream int64
	ord    int64
	data   []byte
	at     time.Time
}

// hookRowsOf maps stored events to the webhook events they make: most
// make one, a message or a join that reopened the conversation makes
// conversation.reopened first, and some make none (reads, a message
// delivered).
func hookRowsOf(evs []Event, rows []hookRow) []hookRow {
	for _, ev := range evs {
		if ev.Transient() || ev.ID == 0 {
			continue
		}
		id := ev.ID
		add := func(typ string, sub int64) {
			rows = append(rows, hookRow{typ: typ, event: &id, stream: ev.ConversationID, ord: ev.Seq*2 + sub, at: ev.At})
		}
		switch ev.Type {
		case EventConversationCreated:
			add(HookConversationCreated, 1)
		case EventJoined:
			var j Joined
			if ev.Decode(&j) == nil && j.Reopened {
				add(HookConversationReopened, 0)
			}
			add(HookConversationAssigned, 1)
		case EventClosed:
			add(HookConversationClosed, 1)
		case EventMessageAdded:
			var m MessageAdded
			if ev.Decode(&m) == nil && m.Reopened {
				add(HookConversationReopened, 0)
			}
			add(HookMessageCreated, 1)
		case EventMessageState:
			var st MessageState
			if ev.Decode(&st) == nil && st.State == StateFailed {
				add(HookMessageFailed, 1)
			}
		case EventRated:
			add(HookRatingCreated, 1)
		}
	}
	return rows
}

// hookInsertSQL inserts a delivery for each of n hookRows and each
// enabled webhook that wants its type: the rows are bound as VALUES of
// (type, event_id, stream, ord, data, at), cast for PostgreSQL.
func hookInsertSQL(pg bool, n int) string {
	row := "(?, ?, ?, ?, ?, ?)"
	match := "instr(w.events, ',' || v.column1 || ',') > 0"
	if pg {
		row = "(CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TIMESTAMPTZ))"
		match = "strpos(w.events, ',' || v.column1 || ',') > 0"
	}
	return `INSERT INTO webhook_deliveries (webhook_id, type, event_id, stream, ord, data, state, attempts, next_at, created_at)
		SELECT w.id, v.column1, v.column2, v.column3, v.column4, v.column5, 'pending', 0, v.column6, v.column6
		FROM (VALUES ` + strings.TrimSuffix(strings.Repeat(row+", ", n), ", ") + `) AS v
		JOIN webhooks w ON w.enabled AND ` + match
}

// hookArgs are hookInsertSQL's arguments for rows.
func hookArgs(rows []hookRow) []any {
	args := make([]any, 0, 6*len(rows))
	for _, r := range rows {
		var ev, data any
		if r.event != nil {
			ev = *r.event
		}
		if r.data != nil {
			data = string(r.data)
		}
		args = append(args, r.typ, ev, r.stream, r.ord, data, r.at)
	}
	return args
}

// pgHookInsert is hookInsertSQL for the PostgreSQL appender's pipeline,
// one statement whatever the rows: arrays of type, event id, stream, ord
// and time.
const pgHookInsert = `INSERT INTO webhook_deliveries (webhook_id, type, event_id, stream, ord, data, state, attempts, next_at, created_at)
	SELECT w.id, v.typ, v.ev, v.stream, v.ord, NULL, 'pending', 0, v.at, v.at
	FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::timestamptz[]) AS v(typ, ev, stream, ord, at)
	JOIN webhooks w ON w.enabled AND strpos(w.events, ',' || v.typ || ',') > 0`

// messageHookRows are the webhook events of the appender's new messages:
// conversation.reopened before the message that reopened it, then
// message.created.
func messageHookRows(created []*appendReq) []hookRow {
	rows := make([]hookRow, 0, len(created))
	for _, r := range created {
		id := r.eventID
		if r.reopened {
			rows = append(rows, hookRow{typ: HookConversationReopened, event: &id, stream: r.in.ConversationID, ord: r.msg.Seq * 2, at: r.at})
		}
		rows = append(rows, hookRow{typ: HookMessageCreated, event: &id, stream: r.in.ConversationID, ord: r.msg.Seq*2 + 1, at: r.at})
	}
	return rows
}

// maxHookRows bounds the rows of one insert (6 values each, under
// SQLite's 32,766 and PostgreSQL's 65,535 bound values).
const maxHookRows = 2000

// insertHooks inserts the deliveries of rows in tx, if any webhook may
// want them.
func (s *Store) insertHooks(tx *gorm.DB, rows []hookRow) error {
	if len(rows) == 0 || !s.hooksMaybe() {
		return nil
	}
	pg := s.dialect == dialectPostgres
	for chunk := range slices.Chunk(rows, maxHookRows) {
		if err := tx.Exec(hookInsertSQL(pg, len(chunk)), hookArgs(chunk)...).Error; err != nil {
			return err
		}
	}
	return nil
}

// contactHook adds the delivery of a contact event (contact.updated,
// contact.erased) in tx: data is its payload's data.
func (s *Store) contactHook(tx *gorm.DB, typ string, contactID int64, data any) error {
	if !s.hooksMaybe() {
		return nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	now := s.now()
	return s.insertHooks(tx, []hookRow{{typ: typ, stream: -contactID, ord: now.UnixMicro(), data: b, at: now}})
}

// Delivery is one webhook event owed to one webhook.
type Delivery struct {
	ID        int64  `json:"id"`
	WebhookID int64  `json:"webhook_id"`
	Type      string `json:"type"`
	// EventID is the stored event it tells (nil for a contact event).
	EventID *int64 `json:"event_id,omitempty"`
	// ConversationID is the conversation it is about, 0 for a contact
	// event; ContactID the contact of a contact event.
	ConversationID int64     `json:"conversation_id,omitempty"`
	ContactID      int64     `json:"contact_id,omitempty"`
	State          string    `json:"state"`
	Attempts       int       `json:"attempts"`
	NextAt         time.Time `json:"next_at"`
	CreatedAt      time.Time `json:"created_at"`
	// LastAt is the last attempt; LastStatus its HTTP status (0: no
	// answer), LastError why it failed, LastBody the start of the answer
	// (at most 1,024 bytes).
	LastAt     *time.Time `json:"last_at"`
	LastStatus int        `json:"last_status"`
	LastError  string     `json:"last_error"`
	LastBody   string     `json:"last_body"`
	// Body is the JSON sent (DueDeliveries only).
	Body json.RawMessage `json:"-"`

	stream, ord int64
	data        []byte
}

// MsgID is the delivery's webhook-id: stable across its attempts.
func (d Delivery) MsgID() string { return "msg_" + strconv.FormatInt(d.ID, 10) }

// deliveryRow is a webhook_deliveries row (migration 0019).
type deliveryRow struct {
	ID         int64
	WebhookID  int64
	Type       string
	EventID    *int64
	Stream     int64
	Ord        int64
	Data       *string
	State      string
	Attempts   int
	NextAt     time.Time
	CreatedAt  time.Time
	LastAt     *time.Time
	LastStatus int
	LastError  string
	LastBody   string
}

func (deliveryRow) TableName() string { return "webhook_deliveries" }

func (r deliveryRow) delivery() Delivery {
	d := Delivery{ID: r.ID, WebhookID: r.WebhookID, Type: r.Type, EventID: r.EventID, State: r.State, Attempts: r.Attempts,
		NextAt: r.NextAt.UTC(), CreatedAt: r.CreatedAt.UTC(), LastAt: utcPtr(r.LastAt), LastStatus: r.LastStatus,
		LastError: r.LastError, LastBody: r.LastBody, stream: r.Stream, ord: r.Ord}
	if r.Stream > 0 {
		d.ConversationID = r.Stream
	} else {
		d.ContactID = -r.Stream
	}
	if r.Data != nil {
		d.data = []byte(*r.Data)
	}
	return d
}

// WebhookDeliveries returns the webhook's deliveries in state (HookPending
// or HookFailed), the newest first, those with an id below before (0: from
// the newest), at most limit (1 to 200). ErrNotFound without the webhook.
func (s *Store) WebhookDeliveries(ctx context.Context, webhookID int64, state string, before int64, limit int) ([]Delivery, error) {
	if state != HookPending && state != HookFailed {
		return nil, invalid("state", "must be %s or %s", HookPending, HookFailed)
	}
	if limit < 1 || limit > 200 {
		return nil, invalid("limit", "must be 1 to 200")
	}
	if list, err := s.webhooks(ctx, webhookID, false); err != nil || len(list) == 0 {
		return nil, cmp.Or(err, ErrNotFound)
	}
	q := s.rdb.WithContext(ctx).Where("webhook_id = ? AND state = ?", webhookID, state)
	if before > 0 {
		q = q.Where("id < ?", before)
	}
	var rows []deliveryRow
	if err := q.Order("id DESC").Limit(limit).Find(&rows).Error; err != nil {
		return nil, dbErr(err)
	}
	out := make([]Delivery, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.delivery())
	}
	return out, nil
}

// ReplayDelivery makes a failed delivery (or, with id 0, every failed
// delivery of the webhook) pending again, due now, with its attempts
// counted afresh and its id kept; it returns how many. ErrNotFound
// without the webhook, or for an id that is not one of its failed
// deliveries.
func (s *Store) ReplayDelivery(ctx context.Context, webhookID, id int64) (int64, error) {
	if list, err := s.webhooks(ctx, webhookID, false); err != nil || len(list) == 0 {
		return 0, cmp.Or(err, ErrNotFound)
	}
	q := s.db.WithContext(ctx).Model(&deliveryRow{}).Where("webhook_id = ? AND state = ?", webhookID, HookFailed)
	if id != 0 {
		q = q.Where("id = ?", id)
	}
	res := q.Updates(map[string]any{"state": HookPending, "attempts": 0, "next_at": s.now()})
	if res.Error != nil {
		return 0, dbErr(res.Error)
	}
	if id != 0 && res.RowsAffected == 0 {
		return 0, ErrNotFound
	}
	return res.RowsAffected, nil
}

// DueDeliveries returns at most maxRuns runs of deliveries of the webhook
// that may be sent now, read from at most limit due ones: each run is
// the next deliveries of one stream, in their order, of a stream not in
// busy (the caller's in flight, at most a few hundred); the runs come in
// the order they fell due. A due delivery held by an earlier one of its
// stream that waits for a retry is put off until that one's next try.
// Each delivery of the runs comes with its Body: {"type", "timestamp",
// "data"} (HookPayload), built for those runs only; one whose event is no
// longer kept (its conversation was deleted meanwhile) is given up as
// failed and not returned.
func (s *Store) DueDeliveries(ctx context.Context, webhookID int64, busy []int64, limit, maxRuns int) ([][]Delivery, error) {
	now := s.now()
	var rows []deliveryRow
	q := s.rdb.WithContext(ctx).Where("webhook_id = ? AND state = ? AND next_at <= ?", webhookID, HookPending, now)
	if len(busy) > 0 {
		q = q.Where("stream NOT IN ?", busy)
	}
	if err := q.Order("next_at, id").Limit(limit).Find(&rows).Error; err != nil {
		return nil, dbErr(err)
	}
	var streams []int64
	for _, r := range rows {
		if !slices.Contains(streams, r.Stream) {
			streams = append(streams, r.Stream)
		}
	}
	if len(streams) == 0 {
		return nil, nil
	}
	// The first pending delivery of each stream, and when it is due: an
	// index seek per stream (webhook_deliveries_stream). A join on a
	// GROUP BY of the streams' minimums, which PostgreSQL planned as a
	// nested loop over every pending row when it thought them few, took
	// 54 s with 14,000 pending.
	row := "(?)"
	if s.dialect == dialectPostgres {
		row = "(CAST(? AS BIGINT))"
	}
	args := []any{webhookID, HookPending}
	for _, st := range streams {
		args = append(args, st)
	}
	var firstIDs []*int64 // nil for a stream with none pending now
	if err := s.rdb.WithContext(ctx).Raw(`SELECT (SELECT d.id FROM webhook_deliveries d
			WHERE d.webhook_id = ? AND d.state = ? AND d.stream = v.column1 ORDER BY d.ord, d.id LIMIT 1)
		FROM (VALUES `+strings.TrimSuffix(strings.Repeat(row+", ", len(streams)), ", ")+`) AS v`, args...).Scan(&firstIDs).Error; err != nil {
		return nil, dbErr(err)
	}
	var ids []int64
	for _, id := range firstIDs {
		if id != nil {
			ids = append(ids, *id)
		}
	}
	var heads []deliveryRow
	if len(ids) > 0 {
		if err := s.rdb.WithContext(ctx).Select("id, stream, ord, next_at").Where("id IN ?", ids).Find(&heads).Error; err != nil {
			return nil, dbErr(err)
		}
	}
	head := map[int64]time.Time{}
	headOrd := map[int64]int64{}
	for _, h := range heads {
		headOrd[h.Stream], head[h.Stream] = h.Ord, h.NextAt
	}
	byStream := map[int64][]deliveryRow{}
	for _, r := range rows {
		if slices.Contains(streams, r.Stream) {
			byStream[r.Stream] = append(byStream[r.Stream], r)
		}
	}
	var runs [][]Delivery
	postpone := map[time.Time][]int64{}
	for _, st := range streams {
		list := byStream[st]
		slices.SortFunc(list, func(a, b deliveryRow) int {
			return cmp.Or(cmp.Compare(a.Ord, b.Ord), cmp.Compare(a.ID, b.ID))
		})
		o, ok := headOrd[st]
		if !ok {
			continue // sent or given up meanwhile
		}
		if list[0].Ord != o {
			// The first of the stream is not due: those after it wait
			// for its next try.
			if at := head[st].UTC(); at.After(now) {
				for _, r := range list {
					postpone[at] = append(postpone[at], r.ID)
				}
			}
			continue
		}
		if len(runs) == maxRuns {
			continue
		}
		run := make([]Delivery, 0, len(list))
		for _, r := range list {
			run = append(run, r.delivery())
		}
		runs = append(runs, run)
	}
	for at, ids := range postpone {
		if err := s.db.WithContext(ctx).Model(&deliveryRow{}).Where("id IN ? AND state = ?", ids, HookPending).
			Update("next_at", at).Error; err != nil {
			return nil, dbErr(err)
		}
	}
	if err := s.hookBodies(ctx, runs); err != nil {
		return nil, err
	}
	kept := runs[:0]
	for _, run := range runs {
		if len(run) > 0 {
			kept = append(kept, run)
		}
	}
	return kept, nil
}

// HookPayload is the body of every delivery, the shape Standard Webhooks
// recommends: the event type, when the change happened, and its data
// (docs/webhooks.md and the webhooks of web/openapi.yaml give each
// type's).
type HookPayload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// Payload data of the conversation events. Seq is the conversation's
// sequence number of the change, which orders a conversation's events.
type (
	// HookConversationData is the data of conversation.created.
	HookConversationData struct {
		Conversation Conversation `json:"conversation"`
		Contact      Contact      `json:"contact"`
	}
	// HookAssignedData is the data of conversation.assigned: an agent joined.
	HookAssignedData struct {
		ConversationID int64  `json:"conversation_id"`
		Seq            int64  `json:"seq"`
		AgentID        int64  `json:"agent_id"`
		AgentName      string `json:"agent_name"`
		Responsible    bool   `json:"responsible"`
	}
	// HookClosedData is the data of conversation.closed (rule 3).
	HookClosedData struct {
		ConversationID int64 `json:"conversation_id"`
		Seq            int64 `json:"seq"`
		SurveyOffered  bool  `json:"survey_offered"`
	}
	// HookReopenedData is the data of conversation.reopened: By "contact"
	// (a message, rule 4) or "agent" (a join; AgentID).
	HookReopenedData struct {
		ConversationID int64  `json:"conversation_id"`
		Seq            int64  `json:"seq"`
		By             string `json:"by"`
		AgentID        int64  `json:"agent_id,omitempty"`
	}
	// HookMessageData is the data of message.created; Private marks an
	// agents' note, which the contact never sees.
	HookMessageData struct {
		ConversationID int64   `json:"conversation_id"`
		Seq            int64   `json:"seq"`
		Private        bool    `json:"private"`
		Message        Message `json:"message"`
	}
	// HookMessageFailedData is the data of message.failed.
	HookMessageFailedData struct {
		ConversationID int64   `json:"conversation_id"`
		Seq            int64   `json:"seq"`
		MessageIDs     []int64 `json:"message_ids"`
		Error          string  `json:"error"`
	}
	// HookRatingData is the data of rating.created.
	HookRatingData struct {
		ConversationID int64   `json:"conversation_id"`
		Seq            int64   `json:"seq"`
		Score          int     `json:"score"`
		Comment        string  `json:"comment"`
		AgentIDs       []int64 `json:"agent_ids"`
	}
	// HookContactData is the data of contact.updated.
	HookContactData struct {
		Contact Contact `json:"contact"`
	}
	// HookContactErasedData is the data of contact.erased (rule 12): the
	// contact and everything of theirs are gone.
	HookContactErasedData struct {
		ContactID int64 `json:"contact_id"`
	}
)

// hookBodies sets the Body of each delivery of runs from its event, and
// gives up (and drops from its run, with those after it) a delivery whose
// event is gone.
func (s *Store) hookBodies(ctx context.Context, runs [][]Delivery) error {
	var ids []int64
	for _, run := range runs {
		for _, d := range run {
			if d.EventID != nil {
				ids = append(ids, *d.EventID)
			}
		}
	}
	evs := map[int64]Event{}
	for chunk := range slices.Chunk(ids, 500) {
		var rows []eventRow
		if err := s.rdb.WithContext(ctx).Where("id IN ?", chunk).Find(&rows).Error; err != nil {
			return dbErr(err)
		}
		list, err := s.hydrate(ctx, rows)
		if err != nil {
			return err
		}
		for _, ev := range list {
			evs[ev.ID] = ev
		}
	}
	for i, run := range runs {
		for j := range run {
			d := &run[j]
			body, err := hookBody(*d, evs)
			if err != nil {
				if err := s.giveUpDelivery(ctx, d.ID, err.Error()); err != nil {
					return err
				}
				runs[i] = run[:j]
				break
			}
			d.Body = body
		}
	}
	return nil
}

var errEventGone = errors.New("the change it tells is no longer kept (its conversation was deleted, or events.retention passed)")

func hookBody(d Delivery, evs map[int64]Event) ([]byte, error) {
	if d.EventID == nil {
		var data json.RawMessage = d.data
		if len(data) == 0 {
			data = json.RawMessage("{}")
		}
		return json.Marshal(HookPayload{Type: d.Type, Timestamp: d.CreatedAt, Data: data})
	}
	ev, ok := evs[*d.EventID]
	if !ok {
		return nil, errEventGone
	}
	c, seq := ev.ConversationID, ev.Seq
	var data any
	switch d.Type {
	case HookConversationCreated:
		var p ConversationCreated
		if err := ev.Decode(&p); err != nil {
			return nil, err
		}
		data = HookConversationData(p)
	case HookConversationAssigned, HookConversationReopened:
		var p Joined
		if ev.Type == EventJoined {
			if err := ev.Decode(&p); err != nil {
				return nil, err
			}
		}
		if d.Type == HookConversationReopened {
			r := HookReopenedData{ConversationID: c, Seq: seq, By: AuthorContact}
			if ev.Type == EventJoined {
				r.By, r.AgentID = AuthorAgent, p.AgentID
			}
			data = r
		} else {
			data = HookAssignedData{ConversationID: c, Seq: seq, AgentID: p.AgentID, AgentName: p.AgentName, Responsible: p.Responsible}
		}
	case HookConversationClosed:
		var p Closed
		if err := ev.Decode(&p); err != nil {
			return nil, err
		}
		data = HookClosedData{ConversationID: c, Seq: seq, SurveyOffered: p.SurveyOffered}
	case HookMessageCreated:
		var p MessageAdded
		if err := ev.Decode(&p); err != nil {
			return nil, err
		}
		if p.Message.ID == 0 {
			return nil, errEventGone
		}
		data = HookMessageData{ConversationID: c, Seq: seq, Private: p.Message.Channel == ChannelNote, Message: p.Message}
	case HookMessageFailed:
		var p MessageState
		if err := ev.Decode(&p); err != nil {
			return nil, err
		}
		data = HookMessageFailedData{ConversationID: c, Seq: seq, MessageIDs: p.MessageIDs, Error: p.Error}
	case HookRatingCreated:
		var p Rated
		if err := ev.Decode(&p); err != nil {
			return nil, err
		}
		data = HookRatingData{ConversationID: c, Seq: seq, Score: p.Score, Comment: p.Comment, AgentIDs: p.AgentIDs}
	default:
		return nil, errors.New("unknown webhook event type " + d.Type)
	}
	return json.Marshal(HookPayload{Type: d.Type, Timestamp: ev.At, Data: data})
}

// giveUpDelivery marks a delivery failed for reason, without an attempt.
func (s *Store) giveUpDelivery(ctx context.Context, id int64, reason string) error {
	return dbErr(s.db.WithContext(ctx).Model(&deliveryRow{}).Where("id = ?", id).
		Updates(map[string]any{"state": HookFailed, "last_error": reason}).Error)
}

// DeliveryOutcome is the outcome of one attempt at a delivery.
type DeliveryOutcome struct {
	ID int64
	// OK says the receiver answered 2xx: the delivery is deleted.
	OK bool
	// At is when the attempt ended.
	At time.Time
	// Status is the answer's HTTP status (0: none), Error why it failed,
	// Body the start of the answer.
	Status int
	Error  string
	Body   string
	// RetryAt is the next try of a failed delivery; zero gives it up
	// (HookFailed).
	RetryAt time.Time
}

// RecordDeliveries stores the outcomes of attempts at the webhook's
// deliveries in one transaction: those that succeeded are deleted; a
// failed one is due again at RetryAt, and the deliveries after it in its
// stream no sooner, or is given up. The webhook's last success and
// failure are updated.
func (s *Store) RecordDeliveries(ctx context.Context, webhookID int64, outs []DeliveryOutcome) error {
	if len(outs) == 0 {
		return nil
	}
	return dbErr(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var done []int64
		var lastOK, lastFail *DeliveryOutcome
		for i := range outs {
			o := &outs[i]
			if o.OK {
				done = append(done, o.ID)
				if lastOK == nil || o.At.After(lastOK.At) {
					lastOK = o
				}
				continue
			}
			if lastFail == nil || o.At.After(lastFail.At) {
				lastFail = o
			}
			body := excerpt(o.Body)
			reason := excerpt(o.Error)
			upd := map[string]any{"attempts": gorm.Expr("attempts + 1"), "last_at": o.At.UTC(), "last_status": o.Status,
				"last_error": reason, "last_body": body}
			if o.RetryAt.IsZero() {
				upd["state"] = HookFailed
			} else {
				upd["next_at"] = o.RetryAt.UTC()
			}
			if err := tx.Model(&deliveryRow{}).Where("id = ?", o.ID).Updates(upd).Error; err != nil {
				return err
			}
			if !o.RetryAt.IsZero() {
				if err := tx.Exec(`UPDATE webhook_deliveries SET next_at = ?
					WHERE webhook_id = ? AND state = ? AND next_at < ?
						AND stream = (SELECT stream FROM webhook_deliveries WHERE id = ?)
						AND ord > (SELECT ord FROM webhook_deliveries WHERE id = ?)`,
					o.RetryAt.UTC(), webhookID, HookPending, o.RetryAt.UTC(), o.ID, o.ID).Error; err != nil {
					return err
				}
			}
		}
		for chunk := range slices.Chunk(done, 500) {
			if err := tx.Exec(`DELETE FROM webhook_deliveries WHERE id IN ?`, chunk).Error; err != nil {
				return err
			}
		}
		upd := map[string]any{}
		if lastOK != nil {
			upd["last_success_at"] = lastOK.At.UTC()
		}
		if lastFail != nil {
			upd["last_failure_at"], upd["last_error"] = lastFail.At.UTC(), excerpt(lastFail.Error)
		}
		// UpdateColumns: a delivery's outcome is no change to the
		// webhook (updated_at stays).
		return tx.Model(&webhookRow{}).Where("id = ?", webhookID).UpdateColumns(upd).Error
	}))
}

// excerpt cuts s to maxHookExcerpt bytes of valid UTF-8.
func excerpt(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxHookExcerpt {
		return s
	}
	cut := maxHookExcerpt
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// EnabledWebhooks returns the enabled webhooks, without their delivery
// counts, for the worker.
func (s *Store) EnabledWebhooks(ctx context.Context) ([]Webhook, error) {
	all, err := s.webhooks(ctx, 0, false)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, w := range all {
		if w.Enabled {
			out = append(out, w)
		}
	}
	return out, nil
}

// pruneFailedDeliveries deletes failed deliveries made before before,
// which also lets their events go (PruneEvents keeps those a delivery
// still needs).
func pruneFailedDeliveries(tx *gorm.DB, before time.Time) error {
	return tx.Exec(`DELETE FROM webhook_deliveries WHERE state = ? AND created_at < ?`, HookFailed, before.UTC()).Error
}
