package store

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/lib/pq"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imserver/imserver/im"
)

// mapErr turns driver errors into the domain's: no rows is im.ErrNotFound, a
// unique violation im.ErrConflict, a foreign-key violation im.ErrNotFound
// (the row it points at does not exist). Other errors are wrapped as they
// are. This is the only place that knows driver error codes.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", im.ErrNotFound, err)
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", im.ErrConflict, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", im.ErrNotFound, err)
		}
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", im.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", im.ErrNotFound, err)
		}
	}
	return err
}

// transient reports a failure that says nothing of the work itself and
// goes away if the transaction is run again: a deadlock or a
// serialisation failure between transactions of several servers sharing a
// PostgreSQL database, or SQLite's database-busy.
func transient(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "40P01", "40001", "55P03": // deadlock_detected, serialization_failure, lock_not_available
			return true
		}
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code()&0xff == sqlite3.SQLITE_BUSY
	}
	return false
}
