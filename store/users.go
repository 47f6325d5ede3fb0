package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
)

type userRow struct {
	UID          int64  `db:"uid"`
	Username     string `db:"username"`
	Name         string `db:"display_name"`
	PasswordHash string `db:"password_hash"`
	Role         string `db:"role"`
	Guest        bool   `db:"guest"`
	Status       string `db:"status"`
	Disabled     bool   `db:"disabled"`
	CreatedAt    int64  `db:"created_at"`
	LastSeen     int64  `db:"last_seen"`
}

// user maps a row to the domain's user. A guest is kept as role 'user'
// with guest set (the role column's CHECK predates guests); the domain's
// role is guest.
func (r userRow) user() im.User {
	role := r.Role
	if r.Guest {
		role = im.RoleGuest
	}
	return im.User{UID: r.UID, Username: r.Username, Name: r.Name, PasswordHash: r.PasswordHash, Role: role,
		Status: r.Status, Disabled: r.Disabled, CreatedAt: r.CreatedAt, LastSeen: r.LastSeen}
}

const userColumns = `uid, username, display_name, password_hash, role, guest, status, disabled, created_at, last_seen`

func users(rows []userRow) []im.User {
	out := make([]im.User, len(rows))
	for i, r := range rows {
		out[i] = r.user()
	}
	return out
}

// CreateUser implements im.UserStore.
func (s *Store) CreateUser(ctx context.Context, u im.User) (im.User, error) {
	if err := s.write(ctx, func(tx *sqlx.Tx) error { return createUser(ctx, tx, &u) }); err != nil {
		return im.User{}, err
	}
	return u, nil
}

// createUser inserts u in tx and sets its uid.
func createUser(ctx context.Context, tx *sqlx.Tx, u *im.User) error {
	role, guest := u.Role, false
	if role == im.RoleGuest {
		role, guest = im.RoleUser, true
	}
	err := tx.GetContext(ctx, &u.UID, tx.Rebind(`
		INSERT INTO users (username, username_key, display_name, password_hash, role, guest, status, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING uid`),
		u.Username, strings.ToLower(u.Username), u.Name, u.PasswordHash, role, guest, u.Status, u.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert user: %w", mapErr(err))
	}
	return nil
}

// UserByName implements im.UserStore.
func (s *Store) UserByName(ctx context.Context, username string) (im.User, error) {
	var r userRow
	err := s.r.GetContext(ctx, &r, s.r.Rebind(`SELECT `+userColumns+` FROM users WHERE username_key = ?`), strings.ToLower(username))
	if err != nil {
		return im.User{}, fmt.Errorf("user %q: %w", username, mapErr(err))
	}
	return r.user(), nil
}

// UserByID implements im.UserStore.
func (s *Store) UserByID(ctx context.Context, uid int64) (im.User, error) {
	var r userRow
	err := s.r.GetContext(ctx, &r, s.r.Rebind(`SELECT `+userColumns+` FROM users WHERE uid = ?`), uid)
	if err != nil {
		return im.User{}, fmt.Errorf("user %d: %w", uid, mapErr(err))
	}
	return r.user(), nil
}

// UsersByID implements im.UserStore.
func (s *Store) UsersByID(ctx context.Context, uids []int64) ([]im.User, error) {
	q, args, err := sqlx.In(`SELECT `+userColumns+` FROM users WHERE uid IN (?) ORDER BY uid`, uids)
	if err != nil {
		return nil, fmt.Errorf("users by id: %w", err)
	}
	var rows []userRow
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("users by id: %w", mapErr(err))
	}
	return users(rows), nil
}

// SearchUsers implements im.UserStore.
func (s *Store) SearchUsers(ctx context.Context, q string, limit int) ([]im.User, error) {
	var rows []userRow
	err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`
		SELECT `+userColumns+` FROM users WHERE username_key LIKE ? ESCAPE '\'
		ORDER BY uid DESC LIMIT ?`), "%"+likeEscape(strings.ToLower(q))+"%", limit)
	if err != nil {
		return nil, fmt.Errorf("search users: %w", mapErr(err))
	}
	return users(rows), nil
}

// SetPassword implements im.UserStore.
func (s *Store) SetPassword(ctx context.Context, uid int64, hash string) error {
	return s.updateUser(ctx, uid, `password_hash = ?`, hash)
}

// SetDisabled implements im.UserStore.
func (s *Store) SetDisabled(ctx context.Context, uid int64, disabled bool) error {
	return s.updateUser(ctx, uid, `disabled = ?`, disabled)
}

// SetName implements im.UserStore.
func (s *Store) SetName(ctx context.Context, uid int64, name string) error {
	return s.updateUser(ctx, uid, `display_name = ?`, name)
}

func (s *Store) updateUser(ctx context.Context, uid int64, set string, value any) error {
	res, err := s.exec(ctx, `UPDATE users SET `+set+` WHERE uid = ?`, value, uid)
	if err != nil {
		return fmt.Errorf("update user %d: %w", uid, mapErr(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %d: %w", uid, im.ErrNotFound)
	}
	return nil
}

// CreateToken implements im.UserStore.
func (s *Store) CreateToken(ctx context.Context, t im.AccessToken) error {
	_, err := s.exec(ctx, `INSERT INTO access_tokens (token_id, uid, issued_at, expires_at) VALUES (?, ?, ?, ?)`,
		t.ID, t.UID, t.IssuedAt, t.ExpiresAt)
	if err != nil {
		return fmt.Errorf("record token: %w", mapErr(err))
	}
	return nil
}

type tokenRow struct {
	ID        string        `db:"token_id"`
	UID       int64         `db:"uid"`
	IssuedAt  int64         `db:"issued_at"`
	ExpiresAt int64         `db:"expires_at"`
	RevokedAt sql.NullInt64 `db:"revoked_at"`
}

func (r tokenRow) token() im.AccessToken {
	return im.AccessToken{ID: r.ID, UID: r.UID, IssuedAt: r.IssuedAt, ExpiresAt: r.ExpiresAt}
}

// Token implements im.UserStore.
func (s *Store) Token(ctx context.Context, id string) (im.AccessToken, bool, error) {
	var r tokenRow
	err := s.r.GetContext(ctx, &r, s.r.Rebind(`SELECT token_id, uid, issued_at, expires_at, revoked_at FROM access_tokens WHERE token_id = ?`), id)
	if err != nil {
		return im.AccessToken{}, false, fmt.Errorf("token: %w", mapErr(err))
	}
	return r.token(), r.RevokedAt.Valid, nil
}

// RevokeToken implements im.UserStore.
func (s *Store) RevokeToken(ctx context.Context, id string, at int64) error {
	if _, err := s.exec(ctx, `UPDATE access_tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL`, at, id); err != nil {
		return fmt.Errorf("revoke token: %w", mapErr(err))
	}
	return nil
}

// RevokeTokens implements im.UserStore.
func (s *Store) RevokeTokens(ctx context.Context, uid int64, except string, at int64) error {
	_, err := s.exec(ctx, `UPDATE access_tokens SET revoked_at = ? WHERE uid = ? AND token_id <> ? AND revoked_at IS NULL`, at, uid, except)
	if err != nil {
		return fmt.Errorf("revoke tokens of %d: %w", uid, mapErr(err))
	}
	return nil
}

// RevokedSince implements im.UserStore.
func (s *Store) RevokedSince(ctx context.Context, since int64) ([]im.AccessToken, error) {
	var rows []tokenRow
	err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`
		SELECT token_id, uid, issued_at, expires_at, revoked_at FROM access_tokens WHERE revoked_at >= ?`), since)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("revoked tokens: %w", mapErr(err))
	}
	out := make([]im.AccessToken, len(rows))
	for i, r := range rows {
		out[i] = r.token()
	}
	return out, nil
}

// DeleteExpiredTokens implements im.UserStore.
func (s *Store) DeleteExpiredTokens(ctx context.Context, before int64) error {
	if _, err := s.exec(ctx, `DELETE FROM access_tokens WHERE expires_at < ?`, before); err != nil {
		return fmt.Errorf("delete expired tokens: %w", mapErr(err))
	}
	return nil
}
