package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/imserver/imserver/im"
)

type userRow struct {
	UID          int64  `db:"uid"`
	Username     string `db:"username"`
	PasswordHash string `db:"password_hash"`
	Role         string `db:"role"`
	Status       string `db:"status"`
	CreatedAt    int64  `db:"created_at"`
	LastSeen     int64  `db:"last_seen"`
}

func (r userRow) user() im.User {
	return im.User{UID: r.UID, Username: r.Username, PasswordHash: r.PasswordHash, Role: r.Role, Status: r.Status, CreatedAt: r.CreatedAt, LastSeen: r.LastSeen}
}

const userColumns = `uid, username, password_hash, role, status, created_at, last_seen`

// CreateUser implements im.UserStore.
func (s *Store) CreateUser(ctx context.Context, u im.User) (im.User, error) {
	err := s.getw(ctx, &u.UID, `
		INSERT INTO users (username, username_key, password_hash, role, status, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING uid`,
		u.Username, strings.ToLower(u.Username), u.PasswordHash, u.Role, u.Status, u.CreatedAt)
	if err != nil {
		return im.User{}, fmt.Errorf("insert user: %w", mapErr(err))
	}
	return u, nil
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
