package im

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/imserver/imserver/wire"
)

// Accounts registers users, checks their passwords and answers who exists.
type Accounts struct {
	*core
	store UserStore
	pw    Passwords
	known *idSet // uids known to exist (accounts are never deleted)
}

// maxKnownUsers bounds the cache of existing uids.
const maxKnownUsers = 100_000

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
func (a *Accounts) Register(ctx context.Context, username, password string) (User, error) {
	return a.create(ctx, username, password, RoleUser)
}

func (a *Accounts) create(ctx context.Context, username, password, role string) (User, error) {
	if !validUsername(username) {
		return User{}, errorf(ErrInvalid, "username must be %d to %d characters of A-Z, a-z, 0-9, '_', '.' and '-'", wire.MinUsername, wire.MaxUsername)
	}
	if err := checkPassword(password); err != nil {
		return User{}, err
	}
	hash, err := a.pw.Hash(password)
	if err != nil {
		return User{}, fmt.Errorf("hash password: %w", err)
	}
	u, err := a.store.CreateUser(ctx, User{Username: username, PasswordHash: hash, Role: role, Status: StatusOnline, CreatedAt: a.nowMillis()})
	if errors.Is(err, ErrConflict) {
		return User{}, errorf(ErrConflict, "username %q is taken", username)
	}
	if err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	a.known.add(u.UID)
	return u, nil
}

// Login checks a username and password and returns the account.
// Unknown users and wrong passwords get the same error, after the same work.
func (a *Accounts) Login(ctx context.Context, username, password string) (User, error) {
	bad := errorf(ErrUnauthorized, "invalid username or password")
	if !validUsername(username) || password == "" || len(password) > 4*wire.MaxPassword {
		return User{}, bad
	}
	u, err := a.store.UserByName(ctx, username)
	if errors.Is(err, ErrNotFound) {
		a.pw.Verify("", password) // same cost as a real check: no user enumeration by timing
		return User{}, bad
	}
	if err != nil {
		return User{}, fmt.Errorf("look up user: %w", err)
	}
	if !a.pw.Verify(u.PasswordHash, password) {
		return User{}, bad
	}
	return u, nil
}

// User returns an account by uid.
func (a *Accounts) User(ctx context.Context, uid int64) (User, error) {
	u, err := a.store.UserByID(ctx, uid)
	if errors.Is(err, ErrNotFound) {
		return User{}, errorf(ErrNotFound, "there is no user %d", uid)
	}
	if err != nil {
		return User{}, fmt.Errorf("look up user %d: %w", uid, err)
	}
	a.known.add(uid)
	return u, nil
}

// exists returns ErrNotFound if there is no user uid. Positive answers
// are cached.
func (a *Accounts) exists(ctx context.Context, uid int64) error {
	if a.known.has(uid) {
		return nil
	}
	_, err := a.User(ctx, uid)
	return err
}

// EnsureAdmin creates the admin account if no user has that name. It
// reports whether it created it. An existing account of that name is left
// as it is; if it is not an admin, that is an error, so a server never runs
// believing it has an admin that it does not have.
func (a *Accounts) EnsureAdmin(ctx context.Context, username, password string) (bool, error) {
	u, err := a.store.UserByName(ctx, username)
	switch {
	case err == nil && u.Role == RoleAdmin:
		return false, nil
	case err == nil:
		return false, fmt.Errorf("user %q exists and is not an admin: choose another IM_ADMIN_USERNAME", username)
	case !errors.Is(err, ErrNotFound):
		return false, fmt.Errorf("look up admin: %w", err)
	}
	if _, err := a.create(ctx, username, password, RoleAdmin); err != nil {
		if errors.Is(err, ErrConflict) { // another process created it first
			return false, nil
		}
		return false, fmt.Errorf("create admin: %w", err)
	}
	return true, nil
}

// Find returns the user named username, compared case-insensitively, as a
// list of at most one (GET /users?username=): empty if there is none.
func (a *Accounts) Find(ctx context.Context, username string) ([]User, error) {
	if username == "" {
		return nil, errorf(ErrInvalid, "username is required")
	}
	if !validUsername(username) {
		return []User{}, nil
	}
	u, err := a.store.UserByName(ctx, username)
	if errors.Is(err, ErrNotFound) {
		return []User{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find user: %w", err)
	}
	return []User{u}, nil
}
