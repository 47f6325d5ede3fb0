package store

import (
	"context"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
)

// Persistent MQTT sessions (migration 0006): the sessions, their
// subscriptions, and their cursors. Implements im.SessionStore.

// SaveSession implements im.SessionStore.
func (s *Store) SaveSession(ctx context.Context, m im.MQTTSession, now int64) error {
	_, err := s.exec(ctx, `
		INSERT INTO mqtt_sessions (client_id, uid, username, version, expiry, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (client_id) DO UPDATE SET uid = excluded.uid, username = excluded.username, version = excluded.version,
			expiry = excluded.expiry, updated_at = excluded.updated_at`,
		m.ClientID, m.UID, m.Username, int(m.Version), int64(m.Expiry), now)
	if err != nil {
		return fmt.Errorf("save session %s: %w", m.ClientID, mapErr(err))
	}
	return nil
}

// DeleteSession implements im.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, clientID string) error {
	return s.write(ctx, func(tx *sqlx.Tx) error {
		for _, q := range []string{
			`DELETE FROM mqtt_cursors WHERE client_id = ?`,
			`DELETE FROM mqtt_subscriptions WHERE client_id = ?`,
			`DELETE FROM mqtt_sessions WHERE client_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, tx.Rebind(q), clientID); err != nil {
				return fmt.Errorf("delete session %s: %w", clientID, mapErr(err))
			}
		}
		return nil
	})
}

// MQTTSessions implements im.SessionStore.
func (s *Store) MQTTSessions(ctx context.Context) ([]im.MQTTSession, error) {
	var rows []struct {
		ClientID string `db:"client_id"`
		UID      int64  `db:"uid"`
		Username string `db:"username"`
		Version  int    `db:"version"`
		Expiry   int64  `db:"expiry"`
	}
	if err := s.r.SelectContext(ctx, &rows, `SELECT client_id, uid, username, version, expiry FROM mqtt_sessions ORDER BY client_id`); err != nil {
		return nil, fmt.Errorf("sessions: %w", mapErr(err))
	}
	var subs []struct {
		ClientID string `db:"client_id"`
		Filter   string `db:"filter"`
		QoS      int    `db:"qos"`
	}
	if err := s.r.SelectContext(ctx, &subs, `SELECT client_id, filter, qos FROM mqtt_subscriptions ORDER BY client_id, filter`); err != nil {
		return nil, fmt.Errorf("subscriptions: %w", mapErr(err))
	}
	out := make([]im.MQTTSession, len(rows))
	byID := make(map[string]*im.MQTTSession, len(rows))
	for i, r := range rows {
		out[i] = im.MQTTSession{ClientID: r.ClientID, UID: r.UID, Username: r.Username, Version: byte(r.Version), Expiry: uint32(r.Expiry)}
		byID[r.ClientID] = &out[i]
	}
	for _, sub := range subs {
		if m := byID[sub.ClientID]; m != nil {
			m.Subscriptions = append(m.Subscriptions, im.MQTTSubscription{Filter: sub.Filter, QoS: byte(sub.QoS)})
		}
	}
	return out, nil
}

// coveredSQL selects the conversations c covers as (conv_id, last_seq,
// agent), with its arguments.
func coveredSQL(c im.Cover) (string, []any) {
	switch {
	case c.Inbox != 0:
		return `
			SELECT conv_id, last_seq, 0 AS agent FROM conversations WHERE user_a = ? OR user_b = ? OR customer = ?
			UNION
			SELECT c.conv_id, c.last_seq, t.agent FROM conversations c
			JOIN cs_sessions t ON t.shop_id = c.shop_id AND t.customer = c.customer
			WHERE t.agent = ?`, []any{c.Inbox, c.Inbox, c.Inbox, c.Inbox}
	case c.Conv != "":
		return `SELECT conv_id, last_seq, 0 AS agent FROM conversations WHERE conv_id = ?`, []any{c.Conv}
	}
	return "", nil
}

// SaveSubscription implements im.SessionStore.
func (s *Store) SaveSubscription(ctx context.Context, clientID string, sub im.MQTTSubscription, c im.Cover) error {
	return s.write(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO mqtt_subscriptions (client_id, filter, qos) VALUES (?, ?, ?)
			ON CONFLICT (client_id, filter) DO UPDATE SET qos = excluded.qos`), clientID, sub.Filter, int(sub.QoS))
		if err != nil {
			return fmt.Errorf("save subscription %s of %s: %w", sub.Filter, clientID, mapErr(err))
		}
		q, args := coveredSQL(c)
		if q == "" {
			return nil
		}
		_, err = tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO mqtt_cursors (client_id, conv_id, acked, sent)
			SELECT ?, v.conv_id, MAX(v.last_seq), MAX(v.last_seq) FROM (`+q+`) v GROUP BY v.conv_id
			ON CONFLICT (client_id, conv_id) DO NOTHING`), append([]any{clientID}, args...)...)
		if err != nil {
			return fmt.Errorf("start the cursors of %s: %w", clientID, mapErr(err))
		}
		return nil
	})
}

// DeleteSubscription implements im.SessionStore.
func (s *Store) DeleteSubscription(ctx context.Context, clientID, filter string) error {
	if _, err := s.exec(ctx, `DELETE FROM mqtt_subscriptions WHERE client_id = ? AND filter = ?`, clientID, filter); err != nil {
		return fmt.Errorf("delete subscription %s of %s: %w", filter, clientID, mapErr(err))
	}
	return nil
}

// Cursors implements im.SessionStore.
func (s *Store) Cursors(ctx context.Context, clientID string) (map[string]im.Cursor, error) {
	var rows []struct {
		Conv  string `db:"conv_id"`
		Acked int64  `db:"acked"`
		Sent  int64  `db:"sent"`
	}
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`SELECT conv_id, acked, sent FROM mqtt_cursors WHERE client_id = ?`), clientID); err != nil {
		return nil, fmt.Errorf("cursors of %s: %w", clientID, mapErr(err))
	}
	out := make(map[string]im.Cursor, len(rows))
	for _, r := range rows {
		out[r.Conv] = im.Cursor{Acked: r.Acked, Sent: r.Sent}
	}
	return out, nil
}

// SaveCursors implements im.SessionStore. A session deleted meanwhile
// keeps none (the foreign key refuses them: nothing is saved).
func (s *Store) SaveCursors(ctx context.Context, clientID string, cursors map[string]im.Cursor) error {
	if len(cursors) == 0 {
		return nil
	}
	convs := make([]string, 0, len(cursors))
	for c := range cursors {
		convs = append(convs, c)
	}
	slices.Sort(convs) // rows locked in one order
	err := s.write(ctx, func(tx *sqlx.Tx) error {
		var exists int
		if err := tx.GetContext(ctx, &exists, tx.Rebind(`SELECT COUNT(*) FROM mqtt_sessions WHERE client_id = ?`), clientID); err != nil || exists == 0 {
			return err
		}
		for _, conv := range convs {
			c := cursors[conv]
			_, err := tx.ExecContext(ctx, tx.Rebind(`
				INSERT INTO mqtt_cursors (client_id, conv_id, acked, sent) VALUES (?, ?, ?, ?)
				ON CONFLICT (client_id, conv_id) DO UPDATE SET acked = excluded.acked,
					sent = CASE WHEN excluded.sent > mqtt_cursors.sent THEN excluded.sent ELSE mqtt_cursors.sent END`),
				clientID, conv, c.Acked, c.Sent)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save the cursors of %s: %w", clientID, mapErr(err))
	}
	return nil
}

// Covered implements im.SessionStore.
func (s *Store) Covered(ctx context.Context, c im.Cover) ([]im.ConvHead, error) {
	q, args := coveredSQL(c)
	if q == "" {
		return nil, nil
	}
	var rows []struct {
		Conv    string `db:"conv_id"`
		LastSeq int64  `db:"last_seq"`
		Agent   int64  `db:"agent"`
	}
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(q+` ORDER BY conv_id`), args...); err != nil {
		return nil, fmt.Errorf("conversations covered: %w", mapErr(err))
	}
	out := make([]im.ConvHead, 0, len(rows))
	for _, r := range rows {
		if n := len(out); n > 0 && out[n-1].Conv == r.Conv {
			if r.Agent == 0 { // the user is a party of it, not only its agent
				out[n-1].Agent = 0
			}
			continue
		}
		out = append(out, im.ConvHead{Conv: r.Conv, LastSeq: r.LastSeq, Agent: r.Agent})
	}
	return out, nil
}

// MessagesAfter implements im.SessionStore.
func (s *Store) MessagesAfter(ctx context.Context, conv string, after, agent int64, limit int) ([]im.Message, error) {
	q, args := `SELECT `+messageSelect("")+` FROM messages WHERE conv_id = ? AND seq > ?`, []any{conv, after}
	if agent != 0 {
		q, args = q+` AND agent = ?`, append(args, agent)
	}
	var rows []messageRow
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(q+` ORDER BY seq LIMIT ?`), append(args, limit)...); err != nil {
		return nil, fmt.Errorf("messages of %s after %d: %w", conv, after, mapErr(err))
	}
	out := make([]im.Message, len(rows))
	for i, r := range rows {
		out[i] = r.message()
	}
	return out, nil
}
