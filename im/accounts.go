package im

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/imserver/imserver/wire"
)

// Accounts registers users and guests, checks passwords, issues access
// tokens and answers for them (every token is recorded, so that logout,
// a password change or an admin's disable revoke exactly the right ones),
// and answers who exists.
type Accounts struct {
	*core
	store    UserStore
	pw       Passwords
	codec    TokenCodec
	ttl      time.Duration
	guestTTL time.Duration
	known    *knownUsers // uids known to exist, and whether they are guests
	checked  *tokenCache

	sweepMu   sync.Mutex
	sweptTill int64 // revocations up to here have closed their connections
}

// Defaults and limits of accounts.
const (
	maxKnownUsers     = 100_000
	defaultTokenTTL   = 7 * 24 * time.Hour
	defaultGuestTTL   = 30 * 24 * time.Hour
	maxDisplayName    = 64
	maxUserSearch     = 200
	maxUsersByID      = 100
	tokenRecheck      = 5 * time.Second // how long a checked token is trusted without the database
	revocationSweep   = 5 * time.Second // how often revocations made elsewhere close connections here
	expiredTokenSweep = 6 * time.Hour   // how often expired tokens are forgotten
)

func newAccounts(c *core, o Options) *Accounts {
	a := &Accounts{core: c, store: o.Store, pw: o.Passwords, codec: o.Tokens, ttl: o.TokenTTL, guestTTL: o.GuestTokenTTL,
		known: newKnownUsers(maxKnownUsers), checked: newTokenCache(maxKnownUsers)}
	if a.ttl <= 0 {
		a.ttl = defaultTokenTTL
	}
	if a.guestTTL <= 0 {
		a.guestTTL = max(defaultGuestTTL, a.ttl)
	}
	a.sweptTill = c.nowMillis()
	c.work.every(revocationSweep, "token-revocations", a.closeRevoked)
	c.work.every(expiredTokenSweep, "expired-tokens", a.forgetExpired)
	return a
}

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

// checkName trims a display name and checks it is 1–64 printable
// characters ("" stays "": no name).
func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", nil
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxDisplayName ||
		strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return "", errorf(ErrInvalid, "name must be 1 to %d printable characters", maxDisplayName)
	}
	return name, nil
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
	a.known.add(u)
	return u, nil
}

// newGuest makes a guest account with a generated username guest-….
func (a *Accounts) newGuest(name string) (User, error) {
	name, err := checkName(name)
	if err != nil {
		return User{}, err
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return User{}, fmt.Errorf("guest name: %w", err)
	}
	return User{Username: "guest-" + hex.EncodeToString(b[:]), Name: name, Role: RoleGuest, Status: StatusOnline, CreatedAt: a.nowMillis()}, nil
}

// Guest creates a guest account (POST /auth/guest) and issues its token.
func (a *Accounts) Guest(ctx context.Context, name string) (Token, error) {
	u, err := a.newGuest(name)
	if err != nil {
		return Token{}, err
	}
	if u, err = a.store.CreateUser(ctx, u); err != nil {
		return Token{}, fmt.Errorf("create guest: %w", err)
	}
	a.known.add(u)
	return a.Issue(ctx, u)
}

// Login checks a username and password and issues a token. Unknown users,
// wrong passwords and disabled accounts get the same error, after the
// same work.
func (a *Accounts) Login(ctx context.Context, username, password string) (Token, error) {
	bad := errorf(ErrUnauthorized, "invalid username or password")
	if !validUsername(username) || password == "" || len(password) > 4*wire.MaxPassword {
		return Token{}, bad
	}
	u, err := a.store.UserByName(ctx, username)
	if errors.Is(err, ErrNotFound) {
		u = User{} // an empty hash: the same cost as a real check, so no user enumeration by timing
	} else if err != nil {
		return Token{}, fmt.Errorf("look up user: %w", err)
	}
	ok, err := a.pw.Verify(u.PasswordHash, password)
	if err != nil {
		return Token{}, fmt.Errorf("check password: %w", err)
	}
	if !ok || u.UID == 0 || u.Disabled || u.Role == RoleGuest {
		return Token{}, bad
	}
	return a.Issue(ctx, u)
}

// Issue issues and records an access token for u.
func (a *Accounts) Issue(ctx context.Context, u User) (Token, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Token{}, fmt.Errorf("token id: %w", err)
	}
	now := a.now()
	ttl := a.ttl
	if u.Role == RoleGuest {
		ttl = a.guestTTL
	}
	at := AccessToken{ID: hex.EncodeToString(b[:]), UID: u.UID, IssuedAt: now.UnixMilli(), ExpiresAt: now.Add(ttl).UnixMilli()}
	s, err := a.codec.Sign(at)
	if err != nil {
		return Token{}, err
	}
	if err := a.store.CreateToken(ctx, at); err != nil {
		return Token{}, fmt.Errorf("record token: %w", err)
	}
	return Token{Token: s, ExpiresAt: time.UnixMilli(at.ExpiresAt), User: u}, nil
}

// Authenticate answers who an access token is for: the token must be well
// signed by this installation, unexpired, recorded and not revoked, and
// its user must exist and not be disabled. The role is the account's
// current role. A token checked in the last few seconds is trusted
// without the database; revocations on this server forget it at once.
func (a *Accounts) Authenticate(ctx context.Context, token string) (Principal, time.Time, error) {
	bad := errorf(ErrUnauthorized, "the access token is invalid or expired: log in again")
	at, err := a.codec.Parse(token)
	if err != nil {
		return Principal{}, time.Time{}, bad
	}
	now := a.now()
	if p, ok := a.checked.get(at.ID, now); ok {
		return p, time.UnixMilli(at.ExpiresAt), nil
	}
	rec, revoked, err := a.store.Token(ctx, at.ID)
	if errors.Is(err, ErrNotFound) || err == nil && (revoked || rec.UID != at.UID) {
		return Principal{}, time.Time{}, bad
	}
	if err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("check token: %w", err)
	}
	u, err := a.store.UserByID(ctx, at.UID)
	if errors.Is(err, ErrNotFound) || err == nil && u.Disabled {
		return Principal{}, time.Time{}, bad
	}
	if err != nil {
		return Principal{}, time.Time{}, fmt.Errorf("check token: %w", err)
	}
	p := Principal{UID: u.UID, Username: u.Username, Role: u.Role, Token: at.ID}
	a.checked.put(at.ID, p, now.Add(tokenRecheck))
	return p, time.UnixMilli(at.ExpiresAt), nil
}

// Logout revokes p's token: REST refuses it, and p's live MQTT
// connections made with it are closed.
func (a *Accounts) Logout(ctx context.Context, p Principal) error {
	if err := a.store.RevokeToken(ctx, p.Token, a.nowMillis()); err != nil {
		return fmt.Errorf("log out: %w", err)
	}
	a.checked.forget(func(id string, _ Principal) bool { return id == p.Token })
	a.live.CloseToken(p.UID, p.Token)
	return nil
}

// ChangePassword changes p's password after checking the old one; every
// other token of p stops working.
func (a *Accounts) ChangePassword(ctx context.Context, p Principal, old, new string) error {
	if p.IsGuest() {
		return errorf(ErrForbidden, "guests have no password")
	}
	if err := checkPassword(new); err != nil {
		return err
	}
	u, err := a.User(ctx, p.UID)
	if err != nil {
		return err
	}
	ok, err := a.pw.Verify(u.PasswordHash, old)
	if err != nil {
		return fmt.Errorf("check password: %w", err)
	}
	if !ok {
		return errorf(ErrUnauthorized, "the old password is wrong")
	}
	hash, err := a.pw.Hash(new)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := a.store.SetPassword(ctx, p.UID, hash); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	return a.revokeAll(ctx, p.UID, p.Token)
}

// SetDisabled disables (or enables) the account uid (admins only): a
// disabled user cannot log in, and every token it has stops working at
// once. Admins cannot disable themselves.
func (a *Accounts) SetDisabled(ctx context.Context, p Principal, uid int64, disabled bool) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	if disabled && uid == p.UID {
		return errorf(ErrInvalid, "you cannot disable yourself")
	}
	if _, err := a.User(ctx, uid); err != nil {
		return err
	}
	if err := a.store.SetDisabled(ctx, uid, disabled); err != nil {
		return fmt.Errorf("disable user %d: %w", uid, err)
	}
	if !disabled {
		return nil
	}
	return a.revokeAll(ctx, uid, "")
}

// revokeAll revokes every token of uid but except, and closes their
// connections.
func (a *Accounts) revokeAll(ctx context.Context, uid int64, except string) error {
	if err := a.store.RevokeTokens(ctx, uid, except, a.nowMillis()); err != nil {
		return fmt.Errorf("revoke tokens of %d: %w", uid, err)
	}
	a.checked.forget(func(id string, p Principal) bool { return p.UID == uid && id != except })
	a.live.CloseUser(uid, except)
	return nil
}

// closeRevoked closes the live connections of tokens revoked since the
// last sweep: by another server sharing the database, or by an expiry of
// the trust in a checked token. Revocations made here close theirs at
// once.
func (a *Accounts) closeRevoked(ctx context.Context) {
	a.sweepMu.Lock()
	since := a.sweptTill - (revocationSweep * 2).Milliseconds() // overlap: clocks and commits are not exact
	a.sweptTill = a.nowMillis()
	a.sweepMu.Unlock()
	revoked, err := a.store.RevokedSince(ctx, since)
	if err != nil {
		a.log.Warn("revoked tokens", "error", err)
		return
	}
	for _, t := range revoked {
		a.checked.forget(func(id string, _ Principal) bool { return id == t.ID })
		a.live.CloseToken(t.UID, t.ID)
	}
}

// forgetExpired deletes the records of tokens that expired a day ago.
func (a *Accounts) forgetExpired(ctx context.Context) {
	if err := a.store.DeleteExpiredTokens(ctx, a.now().Add(-24*time.Hour).UnixMilli()); err != nil {
		a.log.Warn("forget expired tokens", "error", err)
	}
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
	a.known.add(u)
	return u, nil
}

// exists returns ErrNotFound if there is no user uid. Answers come from
// memory once known.
func (a *Accounts) exists(ctx context.Context, uid int64) error {
	if _, ok := a.known.get(uid); ok {
		return nil
	}
	_, err := a.User(ctx, uid)
	return err
}

// notGuest returns ErrNotFound if there is no user uid, and ErrForbidden
// if it is a guest: guests only talk to shops.
func (a *Accounts) notGuest(ctx context.Context, uid int64) error {
	guest, ok := a.known.get(uid)
	if !ok {
		u, err := a.User(ctx, uid)
		if err != nil {
			return err
		}
		guest = u.Role == RoleGuest
	}
	if guest {
		return errorf(ErrForbidden, "user %d is a guest: guests only talk to shops", uid)
	}
	return nil
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

// ByID returns the users of uids that exist (GET /users?uid=…).
func (a *Accounts) ByID(ctx context.Context, uids []int64) ([]User, error) {
	if len(uids) > maxUsersByID {
		return nil, errorf(ErrInvalid, "at most %d uids at once", maxUsersByID)
	}
	if len(uids) == 0 {
		return []User{}, nil
	}
	users, err := a.store.UsersByID(ctx, uids)
	if err != nil {
		return nil, fmt.Errorf("users by id: %w", err)
	}
	return users, nil
}

// Search lists the users whose username contains q, newest first (admins
// only: GET /users?q=).
func (a *Accounts) Search(ctx context.Context, p Principal, q string, limit int) ([]User, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxUserSearch {
		limit = maxUserSearch
	}
	if len(q) > wire.MaxUsername {
		return []User{}, nil
	}
	users, err := a.store.SearchUsers(ctx, q, limit)
	if err != nil {
		return nil, fmt.Errorf("search users: %w", err)
	}
	return users, nil
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

// tokenCache remembers tokens checked recently, each until a deadline.
type tokenCache struct {
	max int

	mu sync.Mutex
	m  map[string]cachedToken
}

type cachedToken struct {
	p     Principal
	until time.Time
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: make(map[string]cachedToken)}
}

func (c *tokenCache) get(id string, now time.Time) (Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || now.After(e.until) {
		return Principal{}, false
	}
	return e.p, true
}

func (c *tokenCache) put(id string, p Principal, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[id] = cachedToken{p: p, until: until}
}

// forget drops the entries match selects.
func (c *tokenCache) forget(match func(id string, p Principal) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		if match(id, e.p) {
			delete(c.m, id)
		}
	}
}
