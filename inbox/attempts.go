package inbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Login attempts are counted in the database (table login_attempts,
// migration 0014), so that every node of a cluster spends the same
// budgets: an attacker spreading guesses over the nodes behind a load
// balancer gets no more of them (issue 14 item 4). Only password checks
// are counted, which cost a bcrypt anyway; nothing on the chat path
// writes here.
//
// Each key (an IP address, an email) is a token bucket of perMinute
// tokens refilled at perMinute a minute, kept as one number, its
// "theoretical arrival time" (GCRA): the instant at which the bucket
// would be full again. An attempt at now is allowed when, pushed by one
// interval, it stays within a minute of now. A key whose instant has
// passed is as good as absent; such rows are deleted at most once a
// minute.

// loginAttemptRow is one key's bucket: TAT in microseconds since the Unix
// epoch.
type loginAttemptRow struct {
	Name string `gorm:"primaryKey"`
	TAT  int64  `gorm:"column:tat;not null"`
}

func (loginAttemptRow) TableName() string { return "login_attempts" }

// TakeAttempt takes one attempt at now from the budget of every key, or
// from none when any is spent, in one transaction: ok is false then, and
// wait is how long until all of them have an attempt again. perMinute is
// the budget of each key (at most perMinute attempts in a burst, one more
// every minute/perMinute); 0 or less allows everything. now is the
// caller's clock (the nodes' clocks are assumed to agree within a
// second). Keys are opaque strings of any bytes and length, such as
// "ip:192.0.2.1" and "email:ann@example.com", as a client sent them (a
// NUL, invalid UTF-8, a megabyte): each is stored as the hex of its
// SHA-256, so that neither database refuses it and a row stays small. An
// error is the database's (ErrUnavailable).
func (s *Store) TakeAttempt(ctx context.Context, now time.Time, perMinute int, keys ...string) (wait time.Duration, ok bool, err error) {
	if perMinute <= 0 || len(keys) == 0 {
		return 0, true, nil
	}
	keys = attemptNames(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	interval := (time.Minute / time.Duration(perMinute)).Microseconds()
	burst := interval * int64(perMinute)
	at := now.UnixMicro()
	sweep := false
	if last := s.attemptSweep.Load(); at-last > time.Minute.Microseconds() && s.attemptSweep.CompareAndSwap(last, at) {
		sweep = true
	}
	err = s.write(ctx, func(tx *gorm.DB, _ *[]Event) error {
		wait, ok = 0, true
		if s.dialect == dialectPostgres {
			// An attempt counted is worth no fsync: a crash forgets the
			// last few, which only gives their keys a few back.
			if err := tx.Exec(`SET LOCAL synchronous_commit = off`).Error; err != nil {
				return err
			}
		}
		if sweep {
			if err := tx.Exec(`DELETE FROM login_attempts WHERE tat < ?`, at).Error; err != nil {
				return err
			}
		}
		rows := make([]loginAttemptRow, len(keys))
		for i, k := range keys {
			rows[i] = loginAttemptRow{Name: k, TAT: at}
		}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error; err != nil {
			return err
		}
		q := tx.Where("name IN ?", keys).Order("name")
		if s.dialect == dialectPostgres {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		var have []loginAttemptRow
		if err := q.Find(&have).Error; err != nil {
			return err
		}
		for i := range have {
			next := max(have[i].TAT, at) + interval
			if over := next - at - burst; over > 0 {
				wait, ok = max(wait, time.Duration(over)*time.Microsecond), false
			}
			have[i].TAT = next
		}
		if !ok {
			return errNoop
		}
		for _, r := range have {
			if err := tx.Model(&loginAttemptRow{}).Where("name = ?", r.Name).Update("tat", r.TAT).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return wait, ok, nil
}

// attemptNames are the login_attempts names of keys: the hex of each
// key's SHA-256 (TakeAttempt).
func attemptNames(keys []string) []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		sum := sha256.Sum256([]byte(k))
		names[i] = hex.EncodeToString(sum[:])
	}
	return names
}
