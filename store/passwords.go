package store

import (
	"context"
	"fmt"

	"github.com/imserver/imserver/im"
)

// SetPasswordHash replaces the password hash of user uid (the
// "imserver admin reset-password" command). It returns im.ErrNotFound if
// there is no such user.
func (s *Store) SetPasswordHash(ctx context.Context, uid int64, hash string) error {
	res, err := s.exec(ctx, `UPDATE users SET password_hash = ? WHERE uid = ?`, hash, uid)
	if err != nil {
		return fmt.Errorf("set password of user %d: %w", uid, mapErr(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("set password of user %d: %w", uid, im.ErrNotFound)
	}
	return nil
}
