package inbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
	_ "modernc.org/sqlite" // registers the pure Go driver "sqlite"
)

type dialect int

const (
	dialectSQLite dialect = iota + 1
	dialectPostgres
)

// Options tune a Store. The zero value (or nil) means the defaults.
type Options struct {
	// Publisher receives the events of every committed change. Nil means
	// the Store's own Hub.
	Publisher Publisher
	// Hub is the in-process hub; nil means a new one.
	Hub *Hub
	// Logger; nil means slog.Default(). The Store's lines carry
	// pkg=inbox and node_id=NodeID: the caller's logger should not add the
	// node id again.
	Logger *slog.Logger
	// MaxOpenConns bounds the PostgreSQL pool (default 20).
	MaxOpenConns int
	// MaxBatch is the most messages committed in one transaction: default
	// 64 on PostgreSQL; on SQLite sqliteMaxRows (256), which is also its
	// cap. A batch is as large as the messages waiting when the writer
	// takes it, so only a deep queue makes large ones.
	MaxBatch int
	// CheckpointEvery is how often SQLite's log is copied into the
	// database file (default 250 ms: at 8,000 messages/s the log grows by
	// 180 MB a second, and a copy every second put p95 at 45-50 ms against
	// 18-28 ms every 250 ms, docs/benchmarks.md).
	CheckpointEvery time.Duration
	// Linger is how long a small batch of messages waits for more while
	// the writer is busy (default 1 ms; negative: never).
	Linger time.Duration
	// MaxMessageBytes bounds the text of one message (default 16 KiB).
	MaxMessageBytes int
	// Mailboxes are the configured mailboxes, in the config's order: the
	// outbox sends from them (the first is the default) and automatic
	// mail (continuity digests, surveys) is enqueued only when there is
	// one.
	Mailboxes []MailboxInfo
	// Channels are the ways of reaching contacts (Channel): at most one
	// chat and one email channel. They decide each agent reply's channel
	// (rule 5) with Channel.Reaches, and are handed each new agent
	// message. Without a chat channel chat reaches online contacts;
	// without an email channel (no mailbox) no reply goes by email.
	// SetChannels replaces them once the store is open.
	Channels []Channel
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// NodeID names this process among the nodes that share the database
	// (the config's node_id): its liveness row and presence rows
	// (nodes.go), the origin of its bus notifications, its log lines
	// and the application_name of its PostgreSQL connections. Empty: Open
	// makes one, the host name, "-" and 8 random hex digits. Two running
	// nodes must not share one.
	NodeID string
	// NoBus, on PostgreSQL, keeps events, transient events and Revoked
	// notices in this process (the Hub alone), as on SQLite: for a
	// single node, or a benchmark of what the bus costs. Without it, and
	// without a Publisher of the caller's, a Store on PostgreSQL carries
	// them to every node on the same database and schema (PGBus,
	// pgbus.go). Ignored on SQLite.
	NoBus bool
	// LockCheckEvery is how often a held worker lock's connection is
	// pinged on PostgreSQL, and how long a ping may take (lock.go;
	// default LockCheckEvery, 5 s). Tests shorten it.
	LockCheckEvery time.Duration
}

// Store is the conversation model on one database. It is safe for
// concurrent use.
type Store struct {
	db      *gorm.DB // writes (on SQLite: the single writer connection)
	rdb     *gorm.DB // reads (on SQLite: a pool of read-only connections)
	sqlW    *sql.DB
	sqlR    *sql.DB
	dialect dialect
	hub     *Hub
	pub     Publisher
	log     *slog.Logger
	opts    Options
	app     *appender
	// checkpoints copies SQLite's log into the database file.
	checkpoints *checkpointer
	// secretKey is the server secret (secret.go), read once.
	secretMu  sync.Mutex
	secretKey []byte
	// chans are the channels (channel.go), replaced whole by
	// SetChannels.
	chans atomic.Pointer[channelSet]
	// beforeCommit, when set (tests), runs last in every write
	// transaction, the appender's included; an error rolls it back.
	beforeCommit func() error
	// afterDecide, when set (tests), runs in the appender's transaction
	// once the channels of a batch's replies are decided, before they
	// are stored.
	afterDecide func()
	// betweenLocks, when set (tests), runs in IngestEmail's transaction
	// between the two row locks of a mail that proves its contact's
	// address: the contact's, then the conversation's.
	betweenLocks func()
	// searchTuning, when set (tests), changes how search chooses
	// between walking and the index.
	searchTuning searchTuning
	// pgCfg is the parsed PostgreSQL URL (nil on SQLite): the bus's
	// listener and the worker locks (lock.go) open connections of their
	// own from a Copy of it, each named with appName.
	pgCfg *pgx.ConnConfig
	// pgAppName is the application_name that the URL (or PGAPPNAME)
	// sets, "" if none (appName).
	pgAppName string
	// bus carries events across nodes on PostgreSQL (pgbus.go); nil on
	// SQLite, with NoBus or with a Publisher of the caller's.
	bus *PGBus
	// nodeMu serializes adding and removing this node's row; nodeJoined
	// says whether it was added and not found reaped since (nodes.go).
	nodeMu     sync.Mutex
	nodeJoined atomic.Bool
	// uses records visitor token uses by group commit (visitors.go);
	// beforeUses, when set (tests), runs before each of its writes.
	uses       tokenUses
	beforeUses func(n int)
	// hotStmts are the connect path's prepared reads (hot.go).
	hotStmts hotStmts
	// sqlitePath is the SQLite file's path, which names its in-process
	// locks.
	sqlitePath string
	// hooksOn says whether any webhook is enabled, as this node last
	// read at hooksRead (ns since the epoch on Options.Now's clock);
	// stopHooks ends the notices that refresh it (webhooks.go).
	hooksOn   atomic.Bool
	hooksRead atomic.Int64
	stopHooks []func()
	// attemptSweep is when TakeAttempt last deleted the spent login
	// attempt rows (µs since the epoch).
	attemptSweep atomic.Int64
}

// Open connects to the database named by rawURL ("sqlite:PATH",
// "file:PATH" or "postgres://..."), migrates its schema and starts the
// message appender.
func Open(ctx context.Context, rawURL string, opts *Options) (*Store, error) {
	s := &Store{}
	if opts != nil {
		s.opts = *opts
	}
	o := &s.opts
	if o.Hub == nil {
		o.Hub = NewHub()
	}
	if o.Publisher == nil {
		o.Publisher = o.Hub
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = 20
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 250 * time.Millisecond
	}
	if o.Linger == 0 {
		o.Linger = time.Millisecond
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 16 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NodeID == "" {
		o.NodeID = newNodeID()
	}
	ownPublisher := opts != nil && opts.Publisher != nil
	s.hub, s.pub, s.log = o.Hub, o.Publisher, o.Logger.With("pkg", "inbox", "node_id", o.NodeID)
	if err := s.SetChannels(o.Channels...); err != nil {
		return nil, err
	}

	var err error
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		err = s.openPostgres(rawURL)
	case strings.HasPrefix(rawURL, "sqlite:"), strings.HasPrefix(rawURL, "file:"):
		err = s.openSQLite(rawURL)
	default:
		err = fmt.Errorf("database url %q: want sqlite:PATH or postgres://", rawURL)
	}
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.closeDB()
		return nil, err
	}
	if err := s.Migrate(); err != nil {
		s.closeDB()
		return nil, fmt.Errorf("migrate: %w", dbErr(err))
	}
	if s.dialect == dialectPostgres && !o.NoBus && !ownPublisher {
		if s.bus, err = startBus(ctx, s); err != nil {
			s.closeDB()
			return nil, err
		}
		s.pub = s.bus
	}
	s.watchHooks()
	if s.app, err = newAppender(s); err != nil {
		s.unwatchHooks()
		if s.bus != nil {
			s.bus.close()
		}
		s.closeDB()
		return nil, err
	}
	return s, nil
}

// gormConfig returns a new gorm configuration for each gorm.Open, which
// fills in and keeps the struct it is given: two stores sharing one would
// share their connection pools.
func gormConfig() *gorm.Config {
	return &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
		TranslateError:         true,
	}
}

// preparing makes gorm prepare each distinct statement once and keep up to
// 512 of them (statements with IN lists vary in length).
func preparing(c *gorm.Config) *gorm.Config {
	c.PrepareStmt, c.PrepareStmtMaxSize, c.PrepareStmtTTL = true, 512, time.Hour
	return c
}

func (s *Store) openSQLite(rawURL string) error {
	path := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "file:"), "//")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if path == "" {
		return errors.New("database url: sqlite needs a file path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("database directory: %w", err)
	}
	s.sqlitePath = path
	if abs, err := filepath.Abs(path); err == nil {
		s.sqlitePath = abs
	}
	// WAL lets readers run beside the one writer. synchronous=FULL makes a
	// commit durable before it is acknowledged; group commit pays its fsync
	// once per batch. Immediate transactions take the write lock at BEGIN,
	// so a transaction never fails half-way on a busy database.
	q := url.Values{}
	q.Add("_pragma", sqliteBusyTimeout)
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// A statement that writes several rows keeps a statement journal to
	// undo itself; in memory it is not a temporary file (the batch
	// appends are such statements).
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_time_format", "sqlite")
	dsn := "file:" + path + "?"
	wq := url.Values{"_txlock": {"immediate"}}
	for k, v := range q {
		wq[k] = append([]string(nil), v...)
	}
	// The writer never checkpoints after its commits; the checkpointer
	// does, on its own connection and, to let the log start over, on the
	// writer's between two transactions (checkpoint.go). The writer then
	// starts the log over and shrinks the file to journal_size_limit.
	wq.Add("_pragma", "wal_autocheckpoint(0)")
	wq.Add("_pragma", "journal_size_limit("+strconv.Itoa(sqliteLogLimit)+")")
	// The writer keeps its prepared statements (sqlite_stmts.go).
	probe, err := sql.Open("sqlite", "")
	if err != nil {
		return err
	}
	w := sql.OpenDB(stmtConnector{dsn: dsn + wq.Encode(), d: probe.Driver()})
	probe.Close()
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	// Readers map the database file (up to 1 GiB of it) instead of
	// reading each page with a system call into a 2 MB cache of their
	// own: the dashboard's list and search look up thousands of rows
	// across the file, which took a quarter to a half more CPU with
	// pread (docs/benchmarks.md).
	r, err := sql.Open("sqlite", dsn+q.Encode()+"&_pragma=query_only(1)&_pragma=mmap_size(1073741824)")
	if err != nil {
		w.Close()
		return err
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	s.dialect, s.sqlW, s.sqlR = dialectSQLite, w, r
	// The checkpointer's connection waits 100 ms, not 10 s, for the
	// writer and the readers: only its TRUNCATE of an idle log waits, and
	// holds the writer meanwhile (checkpoint.go).
	cq := url.Values{}
	for k, v := range q {
		for _, x := range v {
			if x == sqliteBusyTimeout {
				x = "busy_timeout(100)"
			}
			cq.Add(k, x)
		}
	}
	cp, err := sql.Open("sqlite", dsn+cq.Encode())
	if err != nil {
		return err
	}
	cp.SetMaxOpenConns(1)
	s.checkpoints = startCheckpointer(cp, w, path+"-wal", s.opts.CheckpointEvery, func(err error) {
		s.log.Warn("checkpointing the SQLite log", "err", err)
	})
	// SQLite parses every statement it is given: prepared once per
	// connection, gorm's queries skip the parser (a tenth of the server's
	// CPU under load went to parsing them). pgx caches its statements
	// itself.
	if s.db, err = gorm.Open(sqlite.Dialector{DriverName: "sqlite", Conn: w}, preparing(gormConfig())); err != nil {
		return err
	}
	if s.rdb, err = gorm.Open(sqlite.Dialector{DriverName: "sqlite", Conn: r}, preparing(gormConfig())); err != nil {
		return err
	}
	for _, db := range []*gorm.DB{s.db, s.rdb} {
		if err := uncancellable(db); err != nil {
			return err
		}
	}
	return nil
}

// uncancellable runs gorm's statements without their context's deadline
// or cancellation. A SQLite statement on a local file either answers or
// waits for the write lock (busy_timeout), and modernc.org/sqlite starts a
// goroutine and sets a progress handler for every statement whose context
// can be cancelled: a tenth of a read's cost.
func uncancellable(db *gorm.DB) error {
	strip := func(tx *gorm.DB) {
		if tx.Statement.Context != nil {
			tx.Statement.Context = context.WithoutCancel(tx.Statement.Context)
		}
	}
	cb := db.Callback()
	for _, reg := range []func() error{
		func() error { return cb.Query().Before("gorm:query").Register("microchat:uncancellable", strip) },
		func() error { return cb.Row().Before("gorm:row").Register("microchat:uncancellable", strip) },
		func() error { return cb.Raw().Before("gorm:raw").Register("microchat:uncancellable", strip) },
		func() error { return cb.Create().Before("gorm:create").Register("microchat:uncancellable", strip) },
		func() error { return cb.Update().Before("gorm:update").Register("microchat:uncancellable", strip) },
		func() error { return cb.Delete().Before("gorm:delete").Register("microchat:uncancellable", strip) },
	} {
		if err := reg(); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) openPostgres(rawURL string) error {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	s.pgAppName = cfg.RuntimeParams["application_name"]
	cfg.RuntimeParams["application_name"] = s.appName("")
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(s.opts.MaxOpenConns)
	db.SetMaxIdleConns(s.opts.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s.dialect, s.sqlW, s.sqlR, s.pgCfg = dialectPostgres, db, db, cfg.Copy()
	if s.db, err = gorm.Open(postgres.New(postgres.Config{Conn: db}), gormConfig()); err != nil {
		return err
	}
	s.rdb = s.db
	return nil
}

// appName is the application_name of this node's PostgreSQL connections
// of one role: "" for the pool, "listen" for the bus's listener, "lock
// NAME" for a worker lock. It is the URL's own application_name, or
// "microchat", then the node id and the role, so that pg_stat_activity
// says whose and what each connection is. PostgreSQL keeps 63 bytes of
// it: the role is kept whole, the node id cut first.
func (s *Store) appName(role string) string {
	base := s.pgAppName
	if base == "" {
		base = "microchat"
	}
	if s.opts.NodeID != "" {
		base += " " + s.opts.NodeID
	}
	if role == "" {
		return truncate(base, maxAppName)
	}
	role = truncate(" "+role, maxAppName)
	return truncate(base, maxAppName-len(role)) + role
}

// maxAppName is the most bytes of an application_name that PostgreSQL
// keeps (NAMEDATALEN - 1).
const maxAppName = 63

// sqliteBusyTimeout is how long a SQLite connection waits for a lock
// another holds (the writer's, a checkpoint's) before SQLITE_BUSY.
const sqliteBusyTimeout = "busy_timeout(10000)"

// Ping checks that the database answers, within two seconds at most.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := s.sqlW.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if s.sqlR != s.sqlW {
		if err := s.sqlR.PingContext(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// Hub returns the in-process hub that subscribers of this node use.
func (s *Store) Hub() *Hub { return s.hub }

// DB returns the write pool, for metrics of its statistics.
func (s *Store) DB() *sql.DB { return s.sqlW }

// Dialect returns "sqlite" or "postgres".
func (s *Store) Dialect() string {
	if s.dialect == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// Close waits for the messages already accepted to be committed, then
// closes the database.
func (s *Store) Close() error {
	if s.app != nil {
		s.app.close()
	}
	s.unwatchHooks()
	if s.bus != nil {
		s.bus.close()
	}
	return s.closeDB()
}

func (s *Store) closeDB() error {
	s.closeHot()
	var err error
	if s.checkpoints != nil {
		err = s.checkpoints.close()
	}
	if e := s.sqlW.Close(); err == nil {
		err = e
	}
	if s.sqlR != s.sqlW {
		if e := s.sqlR.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Now is the store's clock (Options.Now), by which sessions and visitor
// tokens expire: whoever checks an expiry the store returned compares it
// to this, so that a test drives both.
func (s *Store) Now() time.Time { return s.now() }

// now is the clock, to the microsecond: PostgreSQL keeps no more, and a
// published event must equal its replay.
func (s *Store) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

// errNoop rolls back a transaction that found nothing to change; write
// turns it into success.
var errNoop = errors.New("nothing to change")

// write runs fn in one transaction and, after the commit, publishes the
// events fn added.
func (s *Store) write(ctx context.Context, fn func(tx *gorm.DB, evs *[]Event) error) error {
	var evs []Event
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		evs = evs[:0]
		if err := fn(tx, &evs); err != nil {
			return err
		}
		if err := s.insertHooks(tx, hookRowsOf(evs, nil)); err != nil {
			return err
		}
		if s.bus != nil && len(evs) > 0 {
			// Delivered to the other nodes at the commit, and never for
			// a rollback (pgbus.go).
			for _, p := range s.bus.txPayloads(evs) {
				if err := tx.Exec("SELECT pg_notify(?, ?)", p.channel, p.payload).Error; err != nil {
					return err
				}
			}
		}
		return s.testBeforeCommit()
	})
	if errors.Is(err, errNoop) {
		return nil
	}
	if err != nil {
		return dbErr(err)
	}
	if len(evs) == 0 {
		return nil
	}
	if s.bus != nil {
		// The other nodes heard of them from the transaction.
		s.bus.local(evs)
	} else {
		s.pub.Publish(evs)
	}
	return nil
}

// testBetweenLocks runs the tests' betweenLocks hook, if any.
func (s *Store) testBetweenLocks() {
	if s.betweenLocks != nil {
		s.betweenLocks()
	}
}

// testBeforeCommit runs the tests' beforeCommit hook, if any.
func (s *Store) testBeforeCommit() error {
	if s.beforeCommit == nil {
		return nil
	}
	return s.beforeCommit()
}

// addEvent gives the conversation its next sequence number and stores the
// event. The UPDATE comes first in every write so that it also takes the
// row lock on PostgreSQL before anything is read.
func (s *Store) addEvent(tx *gorm.DB, conversationID int64, typ string, payload any, evs *[]Event) (Event, error) {
	seq, err := bumpSeq(tx, conversationID)
	if err != nil {
		return Event{}, err
	}
	data, err := marshalJSON(payload)
	if err != nil {
		return Event{}, err
	}
	row := eventRow{ConversationID: conversationID, Seq: seq, Type: typ, Data: data, CreatedAt: s.now()}
	if err := tx.Create(&row).Error; err != nil {
		return Event{}, err
	}
	ev := Event{ID: row.ID, ConversationID: conversationID, Seq: seq, Type: typ, Data: data, At: row.CreatedAt}
	*evs = append(*evs, ev)
	return ev, nil
}

// bumpSeq increments the conversation's sequence number and returns it;
// ErrNotFound if there is no such conversation.
func bumpSeq(tx *gorm.DB, conversationID int64) (int64, error) {
	var seqs []int64
	if err := tx.Raw(`UPDATE conversations SET seq = seq + 1 WHERE id = ? RETURNING seq`, conversationID).Scan(&seqs).Error; err != nil {
		return 0, err
	}
	if len(seqs) == 0 {
		return 0, ErrNotFound
	}
	return seqs[0], nil
}
