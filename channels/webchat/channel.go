package webchat

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/presence"
	"github.com/microdeets/microchat/sockets"
)

// Options configure a Channel. Store and Presence are required.
type Options struct {
	Store  *inbox.Store
	Config config.Config
	Logger *slog.Logger
	// Presence is the node's presence tracker, which the visitors'
	// sockets report to (and the agents' too, from web). The Channel does
	// not close it: its owner does, once every socket is closed.
	Presence *presence.Tracker
	// JobTimeout bounds the database work of one frame, a message's
	// commit included (default 10 s).
	JobTimeout time.Duration
}

// Channel is the web chat of one node: the visitors' sockets and the
// widget's rate limits. It is the inbox's chat channel (inbox.Channel).
type Channel struct {
	store    *inbox.Store
	cfg      config.Config
	log      *slog.Logger
	presence *presence.Tracker
	limits   *Limits
	upgrader *gws.Upgrader
	opts     Options
	nextID   atomic.Uint64
	// dispatch are the dispatchers' queues (see OnMessage).
	dispatch []chan incoming
	// runq holds the sockets that have jobs, for the workers.
	runq runQueue
	// sockets are the visitor sockets by token: their expiry, the caps
	// and the revocations (Revoked notices) that close them.
	sockets     *sockets.Registry
	stopRevoked func()
	// conns, framesIn and framesOut are counted for Stats.
	conns               atomic.Int64
	framesIn, framesOut atomic.Uint64

	// ctx bounds the jobs' database work; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc
}

var _ inbox.Channel = (*Channel)(nil)

// Name is inbox.ChannelChat.
func (ch *Channel) Name() string { return inbox.ChannelChat }

// Reaches reports whether a chat reply reaches c now: while c is online
// (spec rules 5 and 6), as the presence tracker stored it.
func (ch *Channel) Reaches(c inbox.Contact) bool { return c.Online }

// Deliver has nothing to do: a visitor's sockets follow their
// conversation's events (a message_added, then the message_state that
// turns a queued reply sent when the contact comes back), so the
// committed message reaches every socket of the contact, on any node,
// through the hub. It never blocks and never fails.
func (ch *Channel) Deliver(context.Context, inbox.Message) error { return nil }

// Stats are counts of a Channel's visitor sockets since it started, for
// metrics.
type Stats struct {
	// Sockets is how many visitor sockets are open (upgraded, not yet
	// cleaned up).
	Sockets int64
	// FramesIn and FramesOut are the frames read and written.
	FramesIn, FramesOut uint64
}

// Stats returns the channel's counts now.
func (ch *Channel) Stats() Stats {
	return Stats{Sockets: ch.conns.Load(), FramesIn: ch.framesIn.Load(), FramesOut: ch.framesOut.Load()}
}

// Tuning of the visitor sockets.
const (
	// authTimeout is how long a new socket may take to send its auth frame.
	authTimeout = 10 * time.Second
	// readTimeout drops a socket that sent nothing, not even a ping, for
	// this long; the widget pings every 25 s.
	readTimeout  = 75 * time.Second
	writeTimeout = 10 * time.Second
	// maxFrame is the largest frame read; more is closed with 1009.
	maxFrame = 64 << 10
	// maxQueuedFrames is how many client frames may wait to be handled;
	// more is a flood, closed with 1008.
	maxQueuedFrames = 32
	// dispatchers is how many goroutines hand frames from the read loops
	// to the sockets' queues.
	dispatchers = 64
	// workers is how many goroutines run the sockets' jobs: their
	// database work, JSON and writes.
	workers = 64
	// maxQueuedEvents is how many events may wait to be written to a slow
	// socket before it is dropped (the widget resumes from its last seq).
	maxQueuedEvents = 256
)

// New returns the web chat channel; Close stops it.
func New(opts Options) (*Channel, error) {
	if opts.Store == nil || opts.Presence == nil {
		return nil, errors.New("webchat: Options.Store and Options.Presence are required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("pkg", "webchat")
	if opts.JobTimeout <= 0 {
		opts.JobTimeout = 10 * time.Second
	}
	ch := &Channel{store: opts.Store, cfg: opts.Config, log: log, opts: opts,
		presence: opts.Presence,
		limits:   NewLimits(opts.Config.Widget.RateLimits)}
	ch.ctx, ch.cancel = context.WithCancel(context.Background())
	lim := opts.Config.Limits
	ch.sockets = sockets.New(sockets.Options{Kind: sockets.Visitors, Now: opts.Store.Now, Logger: log,
		Limits:  sockets.Limits{PerCredential: lim.SocketsPerSession, PerIP: lim.SocketsPerIP, Total: sockets.VisitorCap(lim.VisitorSockets)},
		Recheck: opts.Store.VisitorSessionExpiry, Live: opts.Store.LiveVisitorSessions})
	stopRevoked := opts.Store.Hub().OnRevoked(ch.sockets.Revoked)
	// After the bus listens again, revocations missed meanwhile on other
	// nodes still close their sockets.
	stopResync := opts.Store.Hub().OnResync(func() { go ch.sockets.RecheckAll(ch.ctx) })
	ch.stopRevoked = func() { stopRevoked(); stopResync() }
	ch.dispatch = make([]chan incoming, dispatchers)
	for i := range ch.dispatch {
		ch.dispatch[i] = make(chan incoming, 256)
		go ch.dispatcher(ch.dispatch[i])
	}
	ch.runq.cond.L = &ch.runq.mu
	for range workers {
		go ch.worker()
	}
	ch.upgrader = gws.NewUpgrader(socketEvents{}, &gws.ServerOption{
		ReadMaxPayloadSize: maxFrame,
		// 512 bytes: a visitor's frames are small, and this buffer is
		// most of what an idle socket costs besides its goroutine.
		ReadBufferSize:   512,
		ParallelGolimit:  1,
		CheckUtf8Enabled: true,
		HandshakeTimeout: 10 * time.Second,
		// The connection's own struct is its session storage: gws's
		// default allocates a map per connection.
		NewSession: func() gws.SessionStorage { return &visitorConn{} },
		Recovery: func(gws.Logger) {
			if e := recover(); e != nil {
				log.Error("panic in a visitor socket's read loop", "panic", e)
			}
		},
	})
	return ch, nil
}

// Sockets returns the visitor sockets' registry. Its owner sweeps it
// (Registry.Sweep) every second or so: that closes the sockets whose token
// expired.
func (ch *Channel) Sockets() *sockets.Registry { return ch.sockets }

// Limits returns the widget's rate limits.
func (ch *Channel) Limits() *Limits { return ch.limits }

// Close stops the channel's background work. Close the sockets first,
// and the presence tracker after (it marks everyone still counted
// offline).
func (ch *Channel) Close() {
	ch.stopRevoked()
	ch.cancel()
	for _, d := range ch.dispatch {
		d <- incoming{}
	}
	ch.runq.close()
}

// worker runs the jobs of the sockets in the run queue until it closes.
func (ch *Channel) worker() {
	for {
		vc := ch.runq.pop()
		if vc == nil {
			return
		}
		vc.drain()
	}
}

// runQueue is the sockets waiting for a worker, unbounded so that a hub
// callback never blocks; a socket is in it at most once.
type runQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	q      []*visitorConn
	closed bool
}

func (r *runQueue) push(vc *visitorConn) {
	r.mu.Lock()
	r.q = append(r.q, vc)
	r.mu.Unlock()
	r.cond.Signal()
}

// pop returns the next socket, waiting for one; nil once closed.
func (r *runQueue) pop() *visitorConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.q) == 0 && !r.closed {
		r.cond.Wait()
	}
	if len(r.q) == 0 {
		return nil
	}
	vc := r.q[0]
	r.q[0] = nil
	r.q = r.q[1:]
	return vc
}

func (r *runQueue) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cond.Broadcast()
}

// Peer is what the web layer knows of a visitor's socket request.
type Peer struct {
	// IP is the client's address, X-Forwarded-For believed only from
	// trusted proxies.
	IP        string
	UserAgent string
}

// Track registers a socket for shutdown: goingAway closes it with 1001;
// done is called once its goroutines and jobs have ended. ok false means
// the server is shutting down.
type Track func(goingAway func()) (done func(), ok bool)

// Accept upgrades a visitor's request to the WebSocket and starts its read
// loop. The caller has checked the Origin. It returns an error when the
// upgrade failed (gws has answered the client).
func (ch *Channel) Accept(w http.ResponseWriter, r *http.Request, peer Peer, track Track) error {
	socket, err := ch.upgrader.Upgrade(w, r)
	if err != nil {
		return err
	}
	vc := socket.Session().(*visitorConn)
	vc.ch, vc.conn, vc.ip, vc.userAgent = ch, socket, peer.IP, peer.UserAgent
	vc.id = ch.nextID.Add(1)
	done, ok := track(vc.goAway)
	if !ok {
		socket.WriteClose(1001, []byte("server shutting down"))
		return nil
	}
	vc.done = done
	ch.conns.Add(1)
	if vc.sock, err = ch.sockets.Admit(peer.IP); err != nil {
		// Too many from this address or on this node: refused after the
		// upgrade, so that the widget sees the code and waits.
		vc.state.Store(stateClosed)
		socket.WriteClose(sockets.CloseTooMany, []byte("too many connections"))
		go socket.ReadLoop() // ends at once, and cleans up
		return nil
	}
	socket.SetReadDeadline(time.Now().Add(authTimeout + 5*time.Second))
	vc.authTimer = time.AfterFunc(authTimeout, vc.authTimedOut)
	go socket.ReadLoop()
	return nil
}
