package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/imserver/imserver/auth"
	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store"
	"github.com/imserver/imserver/wire"
)

// ResetAdminPassword sets the password of the admin account username in
// the database at dbURL, to password or, when it is empty, to a generated
// one, and returns the password set. It is the way back in when the
// generated admin password was lost: IM_ADMIN_PASSWORD only matters when
// the account is created. Tokens issued before stay valid until they
// expire.
func ResetAdminPassword(ctx context.Context, dbURL, username, password string, log *slog.Logger) (string, error) {
	if password == "" {
		password = auth.NewSecret()[:24]
	}
	if n := utf8.RuneCountInString(password); n < wire.MinPassword || n > wire.MaxPassword {
		return "", fmt.Errorf("the password must be %d to %d characters", wire.MinPassword, wire.MaxPassword)
	}
	st, err := openStore(ctx, dbURL, log)
	if err != nil {
		return "", err
	}
	defer st.Close()
	u, err := st.UserByName(ctx, username)
	if errors.Is(err, im.ErrNotFound) {
		return "", fmt.Errorf("there is no user %q in %s (the server creates the admin account when it starts)", username, describeDB(dbURL, st))
	}
	if err != nil {
		return "", err
	}
	if u.Role != im.RoleAdmin {
		return "", fmt.Errorf("user %q is not an admin", username)
	}
	hash, err := auth.DefaultArgon2.Hash(password)
	if err != nil {
		return "", err
	}
	if err := st.SetPassword(ctx, u.UID, hash); err != nil {
		return "", err
	}
	// The old password may be known to someone else: its tokens go too
	// (running servers close their connections within seconds).
	if err := st.RevokeTokens(ctx, u.UID, "", time.Now().UnixMilli()); err != nil {
		return "", err
	}
	return password, nil
}

// openStore opens the database, with a hint for the commonest PostgreSQL
// mistake.
func openStore(ctx context.Context, dbURL string, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(ctx, dbURL, log)
	if err != nil && strings.Contains(err.Error(), "SSL is not enabled on the server") {
		return nil, fmt.Errorf("%w: the server does not speak TLS; for a local PostgreSQL add ?sslmode=disable to the database URL (IM_DATABASE_URL), otherwise enable TLS on it", err)
	}
	return st, err
}

// describeDB names the database for logs: the SQLite file as an absolute
// path, or the PostgreSQL URL without its password.
func describeDB(dbURL string, st *store.Store) string {
	if st != nil && st.Engine() == store.SQLite {
		if abs, err := filepath.Abs(st.Path()); err == nil {
			return "sqlite:" + abs
		}
		return "sqlite:" + st.Path()
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return "postgres (unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// dataDir returns the directory of the SQLite file as an absolute path, or
// "" on PostgreSQL.
func dataDir(st *store.Store) string {
	if st == nil || st.Engine() != store.SQLite {
		return ""
	}
	abs, err := filepath.Abs(filepath.Dir(st.Path()))
	if err != nil {
		return filepath.Dir(st.Path())
	}
	return abs
}
