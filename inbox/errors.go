package inbox

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
	"modernc.org/sqlite"
)

// Errors of inbox. Callers test them with errors.Is; web maps them to HTTP
// status codes in one place.
var (
	// ErrNotFound: no such thing, or not one the caller may see. Both cases
	// get the same error so that ids cannot be probed.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: the caller is known but may not do this.
	ErrForbidden = errors.New("forbidden")
	// ErrConflict: the request contradicts the current state.
	ErrConflict = errors.New("conflict")
	// ErrUnauthenticated: wrong credentials or no valid session.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrResync: the events after the requested sequence number are no longer
	// kept; the subscriber must load the conversation afresh.
	ErrResync = errors.New("resync needed")
	// ErrUnavailable: the database cannot be reached; nothing was written.
	ErrUnavailable = errors.New("database unavailable")
)

// InvalidError says which input field is wrong and why.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// ConflictError is an ErrConflict (errors.Is) that says which input field
// contradicts what is stored, and why: a client id reused for a different
// message.
type ConflictError struct {
	Field  string
	Reason string
}

func (e *ConflictError) Error() string { return e.Field + ": " + e.Reason }

// Is makes a ConflictError an ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ForbiddenError is an ErrForbidden (errors.Is) that names the input
// field at fault: a wrong current password.
type ForbiddenError struct {
	Field  string
	Reason string
}

func (e *ForbiddenError) Error() string { return e.Field + ": " + e.Reason }

// Is makes a ForbiddenError an ErrForbidden.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// dbErr wraps errors that mean the database is unreachable with
// ErrUnavailable, keeping the cause.
func dbErr(err error) error {
	if err == nil || !isUnavailable(err) {
		return err
	}
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func isUnavailable(err error) bool {
	var netErr net.Error
	var connErr *pgconn.ConnectError
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		// Class 08 is connection exceptions, 57P01-57P03 admin shutdown,
		// crash shutdown and cannot connect now.
		return pgErr.Code[:2] == "08" || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	case errors.As(err, &connErr), errors.As(err, &netErr):
		return true
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// isDuplicate reports whether err is a unique constraint violation. gorm's
// own translation does not recognise modernc.org/sqlite's errors.
func isDuplicate(err error) bool {
	var sqliteErr *sqlite.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return true
	case errors.As(err, &sqliteErr):
		return sqliteErr.Code() == 2067 || sqliteErr.Code() == 1555 // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY
	case errors.As(err, &pgErr):
		return pgErr.Code == "23505"
	}
	return false
}
