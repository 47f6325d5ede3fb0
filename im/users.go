package im

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/imserver/imserver/wire"
)

// validUsername reports whether name is 3–32 characters of [A-Za-z0-9_.-].
func validUsername(name string) bool {
	if len(name) < wire.MinUsername || len(name) > wire.MaxUsername {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func checkPassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < wire.MinPassword || n > wire.MaxPassword {
		return errorf(ErrInvalid, "password must be %d to %d characters", wire.MinPassword, wire.MaxPassword)
	}
	return nil
}

// Register creates a user account with the role user.
func (s *Service) Register(ctx context.Context, username, password string) (User, error) {
	return s.createUser(ctx, username, password, RoleUser)
}

func (s *Service) createUser(ctx context.Context, username, password, role string) (User, error) {
	if !validUsername(username) {
		return User{}, errorf(ErrInvalid, "username must be %d to %d characters of A-Z, a-z, 0-9, '_', '.' and '-'", wire.MinUsername, wire.MaxUsername)
	}
	if err := checkPassword(password); err != nil {
		return User{}, err
	}
	hash, err := s.pw.Hash(password)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	u, err := s.store.CreateUser(ctx, User{Username: username, PasswordHash: hash, Role: role, Status: StatusOnline, CreatedAt: s.nowMillis()})
	if errors.Is(err, ErrConflict) {
		return User{}, errorf(ErrConflict, "username %q is taken", username)
	}
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	s.known.Store(u.UID, struct{}{})
	return u, nil
}

// Login checks a username and password and returns the account.
// Unknown users and wrong passwords get the same error, after the same work.
func (s *Service) Login(ctx context.Context, username, password string) (User, error) {
	bad := errorf(ErrUnauthorized, "invalid username or password")
	if !validUsername(username) || password == "" || len(password) > 4*wire.MaxPassword {
		return User{}, bad
	}
	u, err := s.store.UserByName(ctx, username)
	if errors.Is(err, ErrNotFound) {
		u = User{} // an empty hash: same cost as a real check, so no user enumeration by timing
	} else if err != nil {
		return User{}, fmt.Errorf("look up user: %w", err)
	}
	ok, err := s.pw.Verify(u.PasswordHash, password)
	if err != nil {
		return User{}, fmt.Errorf("check password: %w", err)
	}
	if !ok || u.UID == 0 {
		return User{}, bad
	}
	return u, nil
}

// User returns an account by uid.
func (s *Service) User(ctx context.Context, uid int64) (User, error) {
	u, err := s.store.UserByID(ctx, uid)
	if errors.Is(err, ErrNotFound) {
		return User{}, errorf(ErrNotFound, "there is no user %d", uid)
	}
	if err != nil {
		return User{}, fmt.Errorf("look up user %d: %w", uid, err)
	}
	return u, nil
}

// EnsureAdmin creates the admin account if no user has that name. It
// reports whether it created it. An existing account of that name is left
// as it is; if it is not an admin, that is an error, so a server never runs
// believing it has an admin that it does not have.
func (s *Service) EnsureAdmin(ctx context.Context, username, password string) (bool, error) {
	u, err := s.store.UserByName(ctx, username)
	switch {
	case err == nil && u.Role == RoleAdmin:
		return false, nil
	case err == nil:
		return false, fmt.Errorf("user %q exists and is not an admin: choose another IM_ADMIN_USERNAME", username)
	case !errors.Is(err, ErrNotFound):
		return false, fmt.Errorf("look up admin: %w", err)
	}
	if _, err := s.createUser(ctx, username, password, RoleAdmin); err != nil {
		if errors.Is(err, ErrConflict) { // another process created it first
			return false, nil
		}
		return false, fmt.Errorf("create admin: %w", err)
	}
	return true, nil
}
