package store

import (
	"context"
	"database/sql"
)

// lockWrite admits one SQLite writer at a time, first come, first served,
// and returns the release. SQLite has one writer connection; database/sql
// hands a freed connection to a random waiter, so under load some writers
// would wait many times longer than others. Channel waiters are served in
// order. On PostgreSQL it does nothing: writers take row locks.
func (s *Store) lockWrite(ctx context.Context) (func(), error) {
	if s.gate == nil {
		return func() {}, nil
	}
	select {
	case s.gate <- struct{}{}:
		return func() { <-s.gate }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// exec runs one writing statement.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	release, err := s.lockWrite(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return s.w.ExecContext(ctx, s.w.Rebind(query), args...)
}

// getw runs one writing statement that returns a row (INSERT … RETURNING).
func (s *Store) getw(ctx context.Context, dest any, query string, args ...any) error {
	release, err := s.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer release()
	return s.w.GetContext(ctx, dest, s.w.Rebind(query), args...)
}
