package store

import (
	"context"
	"fmt"

	"github.com/imserver/imserver/topics"
)

// SetLastSeen implements im.PresenceStore.
func (s *Store) SetLastSeen(ctx context.Context, uid, at int64) error {
	if _, err := s.exec(ctx, `UPDATE users SET last_seen = ? WHERE uid = ? AND last_seen < ?`, at, uid, at); err != nil {
		return fmt.Errorf("last seen of %d: %w", uid, mapErr(err))
	}
	return nil
}

// SharesConversation implements im.PresenceStore.
func (s *Store) SharesConversation(ctx context.Context, a, b int64) (bool, error) {
	var n int
	err := s.r.GetContext(ctx, &n, s.r.Rebind(`
		SELECT CASE WHEN
			EXISTS (SELECT 1 FROM conversations WHERE conv_id = ? AND last_seq > 0)
			OR EXISTS (SELECT 1 FROM room_members x JOIN room_members y ON y.room_id = x.room_id WHERE x.uid = ? AND y.uid = ?)
			OR EXISTS (SELECT 1 FROM conversations c JOIN shop_agents sa ON sa.shop_id = c.shop_id
			           WHERE c.kind = 'service' AND ((c.customer = ? AND sa.uid = ?) OR (c.customer = ? AND sa.uid = ?)))
		THEN 1 ELSE 0 END`), topics.SingleConv(a, b), a, b, a, b, b, a)
	if err != nil {
		return false, fmt.Errorf("conversations of %d and %d: %w", a, b, mapErr(err))
	}
	return n == 1, nil
}
