// Package sockets keeps account of one node's WebSockets of one kind (the
// agents' or the visitors') by the credential each was opened with: an
// agent's session, a visitor's token. It holds two rules of
// docs/protocol.md and docs/widget-protocol.md:
//
//   - A socket acts only while its credential is valid. The registry knows
//     each credential's expiry and ends its sockets when it passes (one
//     sweeper per registry, not a timer per socket: an idle visitor socket
//     must stay small), and at once when a Revoked notice names it
//     (logout, erase, token revoked, agent removed). The socket's owner
//     closes it with CloseUnauthorized and refuses every frame after
//     Valid turned false.
//   - A principal's sockets are bounded: per credential, per client IP and
//     in all. The extra socket is refused with CloseTooMany after the
//     upgrade, so that a browser sees the code.
//
// The registry never writes to a socket: it calls the End function the
// socket's owner gave, which must not block.
package sockets

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microdeets/microchat/inbox"
)

// Close codes of both sockets (docs/protocol.md, docs/widget-protocol.md).
const (
	// CloseUnauthorized: the credential the socket was opened with ended
	// (logout, expiry, revocation, erase, agent removed). The client logs
	// in again (agents) or starts over (visitors); it does not reconnect
	// with the same credential.
	CloseUnauthorized = 4401
	// CloseTooMany: too many sockets of this credential, this address or
	// this node. The client waits at least 30 s, with jitter, before it
	// connects again.
	CloseTooMany = 4429
)

// ErrTooMany is Admit's and Bind's answer over a limit.
var ErrTooMany = errors.New("sockets: too many connections")

// Kind says which Revoked notices concern a registry's sockets.
type Kind uint8

const (
	// Agents: credentials are sessions (Revoked.SessionID), principals
	// agents (Revoked.AgentID).
	Agents Kind = iota + 1
	// Visitors: credentials are visitor tokens (Revoked.VisitorSessionID),
	// principals contacts (Revoked.ContactID).
	Visitors
)

// Limits bound a registry's sockets; 0 is no limit.
type Limits struct {
	// PerCredential is the most sockets of one session or token.
	PerCredential int
	// PerPrincipal is the most sockets of one agent or contact, whatever
	// credentials they were opened with.
	PerPrincipal int
	// PerIP is the most sockets from one client address.
	PerIP int
	// Total is the most sockets of the registry.
	Total int
}

// Options configure a Registry.
type Options struct {
	Kind   Kind
	Limits Limits
	// Now is the clock that expiries are compared to (the store's, so that
	// tests drive both); nil means time.Now.
	Now func() time.Time
	// Recheck, if set, reads again a credential (its SessionID) whose known
	// expiry passed, and returns its expiry now: later if it was renewed
	// meanwhile (a visitor token slides with use), or an error wrapping
	// inbox.ErrUnauthenticated if it ended. Nil means expiries are final
	// (agent sessions).
	Recheck func(ctx context.Context, cred string) (time.Time, error)
	// Live reads many credentials again at once (RecheckAll): of creds,
	// those still valid, with their expiry; the others ended (logout,
	// revocation, erase, agent removed). Nil: RecheckAll does nothing.
	Live   func(ctx context.Context, creds []string) (map[string]time.Time, error)
	Logger *slog.Logger
}

// Registry is one node's sockets of one kind.
type Registry struct {
	opts Options

	mu          sync.Mutex
	total       int
	byIP        map[string]int
	byCred      map[string][]*Socket
	byPrincipal map[int64][]*Socket
	// notices counts the Revoked notices of the registry's kind, each
	// counted under mu before its sockets are looked up (see Missed).
	notices atomic.Uint64
}

// New returns an empty registry.
func New(opts Options) *Registry {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Registry{opts: opts, byIP: map[string]int{},
		byCred: map[string][]*Socket{}, byPrincipal: map[int64][]*Socket{}}
}

// Socket is one socket's entry. Its owner keeps it from Admit to Remove.
type Socket struct {
	r         *Registry
	ip        string
	cred      string // "" until Bind
	principal int64
	// expires is the credential's known expiry, in Unix nanoseconds.
	expires atomic.Int64
	ended   atomic.Bool
	end     func()
	removed bool // under r.mu
}

// Admit counts a new socket from ip, or refuses it with ErrTooMany over
// Limits.PerIP or Limits.Total.
func (r *Registry) Admit(ip string) (*Socket, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.opts.Limits
	if l.Total > 0 && r.total >= l.Total {
		return nil, ErrTooMany
	}
	if l.PerIP > 0 && ip != "" && r.byIP[ip] >= l.PerIP {
		return nil, ErrTooMany
	}
	r.total++
	if ip != "" {
		r.byIP[ip]++
	}
	return &Socket{r: r, ip: ip}, nil
}

// Len returns how many sockets are admitted.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// Bind gives an admitted socket its credential (the SessionID of its
// session or token), principal (agent or contact id), the credential's
// expiry and the function that ends the socket: it closes it with
// CloseUnauthorized and must not block. ErrTooMany over
// Limits.PerCredential or Limits.PerPrincipal; the socket stays admitted
// until Remove.
func (s *Socket) Bind(cred string, principal int64, expires time.Time, end func()) error {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.removed || s.cred != "" {
		return errors.New("sockets: Bind of a removed or bound socket")
	}
	if l := r.opts.Limits.PerCredential; l > 0 && len(r.byCred[cred]) >= l {
		return ErrTooMany
	}
	if l := r.opts.Limits.PerPrincipal; l > 0 && len(r.byPrincipal[principal]) >= l {
		return ErrTooMany
	}
	s.cred, s.principal, s.end = cred, principal, end
	s.expires.Store(expires.UnixNano())
	r.byCred[cred] = append(r.byCred[cred], s)
	r.byPrincipal[principal] = append(r.byPrincipal[principal], s)
	return nil
}

// Remove forgets the socket once it closed; safe to call more than once.
func (s *Socket) Remove() {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.removed {
		return
	}
	s.removed = true
	r.total--
	if s.ip != "" {
		if r.byIP[s.ip]--; r.byIP[s.ip] <= 0 {
			delete(r.byIP, s.ip)
		}
	}
	if s.cred != "" {
		r.byCred[s.cred] = without(r.byCred[s.cred], s)
		if len(r.byCred[s.cred]) == 0 {
			delete(r.byCred, s.cred)
		}
		r.byPrincipal[s.principal] = without(r.byPrincipal[s.principal], s)
		if len(r.byPrincipal[s.principal]) == 0 {
			delete(r.byPrincipal, s.principal)
		}
	}
}

func without(list []*Socket, s *Socket) []*Socket {
	for i, x := range list {
		if x == s {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			return list[:len(list)-1]
		}
	}
	return list
}

// Notices returns how many notices of the registry's kind came so far.
// Read it before reading the credential a socket is opened with, and ask
// Missed after Bind.
func (r *Registry) Notices() uint64 { return r.notices.Load() }

// Missed reports whether a notice came since seen (Notices before the
// credential was read). Such a notice may have named the credential
// before Bind made the socket findable: the caller reads the credential
// again before it trusts the socket. Notices are rare, so this is too.
func (s *Socket) Missed(seen uint64) bool { return s.r.notices.Load() != seen }

// Valid reports whether the socket may act now: bound, not ended, and
// before its credential's known expiry.
func (s *Socket) Valid() bool {
	return s.cred != "" && !s.ended.Load() && s.r.opts.Now().UnixNano() < s.expires.Load()
}

// Check is Valid, but for a socket whose known expiry passed it reads the
// credential again (Options.Recheck), which a renewal may have extended:
// the socket and the HTTP API then agree. It ends the socket if the
// credential ended. err is the recheck's error when the database could not
// answer (the socket must not act then either). It may wait for the
// database: call it where that is allowed.
func (s *Socket) Check(ctx context.Context) (bool, error) {
	if s.Valid() {
		return true, nil
	}
	if s.cred == "" || s.ended.Load() || s.r.opts.Recheck == nil {
		s.End()
		return false, nil
	}
	exp, err := s.r.opts.Recheck(ctx, s.cred)
	switch {
	case errors.Is(err, inbox.ErrUnauthenticated):
		s.End()
		return false, nil
	case err != nil:
		return false, err
	}
	s.extend(exp)
	if !s.Valid() {
		s.End()
		return false, nil
	}
	return true, nil
}

// Expires returns the credential's known expiry.
func (s *Socket) Expires() time.Time { return time.Unix(0, s.expires.Load()) }

// extend moves the known expiry later, never earlier.
func (s *Socket) extend(t time.Time) {
	n := t.UnixNano()
	for {
		old := s.expires.Load()
		if n <= old || s.expires.CompareAndSwap(old, n) {
			return
		}
	}
}

// End ends the socket once, calling its end function.
func (s *Socket) End() {
	if s.ended.CompareAndSwap(false, true) && s.end != nil {
		s.end()
	}
}

// Revoked ends at once the sockets whose credential or principal the
// notice names; the other kind's notices are ignored. It does not block:
// hand it to inbox.Hub.OnRevoked.
func (r *Registry) Revoked(rv inbox.Revoked) {
	var list []*Socket
	r.mu.Lock()
	if r.opts.Kind == Agents && (rv.SessionID != "" || rv.AgentID != 0) ||
		r.opts.Kind == Visitors && (rv.VisitorSessionID != "" || rv.ContactID != 0) {
		r.notices.Add(1)
	}
	switch r.opts.Kind {
	case Agents:
		if rv.SessionID != "" {
			list = append(list, r.byCred[rv.SessionID]...)
		}
		if rv.AgentID != 0 {
			list = append(list, r.byPrincipal[rv.AgentID]...)
		}
	case Visitors:
		if rv.VisitorSessionID != "" {
			list = append(list, r.byCred[rv.VisitorSessionID]...)
		}
		if rv.ContactID != 0 {
			list = append(list, r.byPrincipal[rv.ContactID]...)
		}
	}
	r.mu.Unlock()
	for _, s := range list {
		s.End()
	}
}

// RecheckAll reads every bound socket's credential again (Options.Live)
// and ends the sockets of those that ended: after this node may have
// missed Revoked notices (the PostgreSQL bus lost its listening
// connection; inbox.Hub.OnResync), a logout or an erase on another node
// still closes them. The sockets of a credential still valid learn its
// expiry. It waits for the database: run it in a goroutine of its own. An
// error is the database's; the sockets stay as they were.
func (r *Registry) RecheckAll(ctx context.Context) error {
	if r.opts.Live == nil {
		return nil
	}
	r.mu.Lock()
	creds := make([]string, 0, len(r.byCred))
	for cred := range r.byCred {
		creds = append(creds, cred)
	}
	r.mu.Unlock()
	if len(creds) == 0 {
		return nil
	}
	live, err := r.opts.Live(ctx, creds)
	if err != nil {
		r.opts.Logger.Warn("rereading the sockets' credentials", "err", err)
		return err
	}
	var ended, valid []*Socket
	r.mu.Lock()
	for _, cred := range creds {
		if _, ok := live[cred]; ok {
			valid = append(valid, r.byCred[cred]...)
		} else {
			ended = append(ended, r.byCred[cred]...)
		}
	}
	r.mu.Unlock()
	for _, s := range valid {
		s.extend(live[s.cred])
	}
	for _, s := range ended {
		s.End()
	}
	return nil
}

// Sweep ends the sockets whose credential expired, reading again (see
// Check) those that may have been renewed. The owner calls it every
// second or so (web's sweepSockets, for both kinds).
func (r *Registry) Sweep(ctx context.Context) {
	now := r.opts.Now().UnixNano()
	var due []*Socket
	r.mu.Lock()
	for _, list := range r.byCred {
		for _, s := range list {
			if s.expires.Load() <= now && !s.ended.Load() {
				due = append(due, s)
			}
		}
	}
	r.mu.Unlock()
	if len(due) == 0 {
		return
	}
	// One read per credential, not per socket.
	checked := map[string]bool{}
	for _, s := range due {
		if ok, seen := checked[s.cred]; seen {
			if !ok {
				s.End()
			}
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := s.Check(cctx)
		cancel()
		if err != nil {
			// The database is down: the socket refuses frames meanwhile
			// (Valid is false) and the next sweep tries again.
			r.opts.Logger.Warn("rereading an expired credential", "err", err)
			continue
		}
		checked[s.cred] = ok
		if ok {
			// Its other sockets learn the new expiry too.
			r.mu.Lock()
			others := append([]*Socket(nil), r.byCred[s.cred]...)
			r.mu.Unlock()
			for _, o := range others {
				o.extend(s.Expires())
			}
		}
	}
}

// VisitorCap is the node-wide cap of visitor sockets: configured
// (limits.visitor_sockets) if more than 0, else the open-file limit less a
// reserve of a fifth of it, at least 256, kept for agents' sockets, health
// checks, the database and files. 0 (no cap) if the limit is unknown.
func VisitorCap(configured int) int {
	if configured > 0 {
		return configured
	}
	n := openFileLimit()
	if n <= 0 {
		return 0
	}
	return max(n-max(n/5, 256), 64)
}
