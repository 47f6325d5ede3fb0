package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
)

type shopRow struct {
	ID             int64  `db:"shop_id"`
	Name           string `db:"name"`
	WelcomeMessage string `db:"welcome_message"`
	OfflineMessage string `db:"offline_message"`
	KeywordReplies string `db:"keyword_replies"`
	CreatedAt      int64  `db:"created_at"`
}

const shopColumns = `shop_id, name, welcome_message, offline_message, keyword_replies, created_at`

func (r shopRow) shop() (im.Shop, error) {
	s := im.Shop{ID: r.ID, Name: r.Name, WelcomeMessage: r.WelcomeMessage, OfflineMessage: r.OfflineMessage, CreatedAt: r.CreatedAt}
	if err := json.Unmarshal([]byte(r.KeywordReplies), &s.KeywordReplies); err != nil {
		return s, fmt.Errorf("shop %d: keyword_replies: %w", r.ID, err)
	}
	if s.KeywordReplies == nil {
		s.KeywordReplies = []im.KeywordReply{}
	}
	return s, nil
}

func keywordJSON(krs []im.KeywordReply) string {
	if krs == nil {
		krs = []im.KeywordReply{}
	}
	b, _ := json.Marshal(krs)
	return string(b)
}

// CreateShop implements im.ShopStore.
func (s *Store) CreateShop(ctx context.Context, shop im.Shop) (im.Shop, error) {
	err := s.getw(ctx, &shop.ID, `
		INSERT INTO shops (name, welcome_message, offline_message, keyword_replies, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING shop_id`,
		shop.Name, shop.WelcomeMessage, shop.OfflineMessage, keywordJSON(shop.KeywordReplies), shop.CreatedAt, shop.CreatedAt)
	if err != nil {
		return im.Shop{}, fmt.Errorf("insert shop: %w", mapErr(err))
	}
	return shop, nil
}

// UpdateShop implements im.ShopStore.
func (s *Store) UpdateShop(ctx context.Context, shop im.Shop) error {
	res, err := s.exec(ctx, `
		UPDATE shops SET name = ?, welcome_message = ?, offline_message = ?, keyword_replies = ? WHERE shop_id = ?`,
		shop.Name, shop.WelcomeMessage, shop.OfflineMessage, keywordJSON(shop.KeywordReplies), shop.ID)
	if err != nil {
		return fmt.Errorf("update shop %d: %w", shop.ID, mapErr(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("shop %d: %w", shop.ID, im.ErrNotFound)
	}
	return nil
}

// Shop implements im.ShopStore.
func (s *Store) Shop(ctx context.Context, id int64) (im.Shop, error) {
	return getShop(ctx, s.r, id, "")
}

func getShop(ctx context.Context, q sqlx.QueryerContext, id int64, suffix string) (im.Shop, error) {
	var r shopRow
	if err := sqlx.GetContext(ctx, q, &r, rebind(q, `SELECT `+shopColumns+` FROM shops WHERE shop_id = ?`+suffix), id); err != nil {
		return im.Shop{}, fmt.Errorf("shop %d: %w", id, mapErr(err))
	}
	return r.shop()
}

// Shops implements im.ShopStore.
func (s *Store) Shops(ctx context.Context) ([]im.Shop, error) {
	var rows []shopRow
	if err := s.r.SelectContext(ctx, &rows, `SELECT `+shopColumns+` FROM shops ORDER BY shop_id`); err != nil {
		return nil, fmt.Errorf("list shops: %w", mapErr(err))
	}
	out := make([]im.Shop, len(rows))
	for i, r := range rows {
		var err error
		if out[i], err = r.shop(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// AddAgent implements im.ShopStore.
func (s *Store) AddAgent(ctx context.Context, shop, uid, now int64) error {
	_, err := s.exec(ctx, `
		INSERT INTO shop_agents (shop_id, uid, added_at) VALUES (?, ?, ?) ON CONFLICT (shop_id, uid) DO NOTHING`, shop, uid, now)
	if err != nil {
		return fmt.Errorf("add agent %d to shop %d: %w", uid, shop, mapErr(err))
	}
	return nil
}

// RemoveAgent implements im.ShopStore.
func (s *Store) RemoveAgent(ctx context.Context, shop, uid int64) (bool, error) {
	res, err := s.exec(ctx, `DELETE FROM shop_agents WHERE shop_id = ? AND uid = ?`, shop, uid)
	if err != nil {
		return false, fmt.Errorf("remove agent %d from shop %d: %w", uid, shop, mapErr(err))
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

type agentRow struct {
	UID            int64  `db:"uid"`
	Username       string `db:"username"`
	Status         string `db:"status"`
	OpenSessions   int64  `db:"open_sessions"`
	LastAssignedAt int64  `db:"last_assigned_at"`
}

// agentsQuery lists a shop's agents with their open sessions of that shop.
const agentsQuery = `
	SELECT sa.uid, u.username, u.status, sa.last_assigned_at,
	       (SELECT COUNT(*) FROM cs_sessions cs WHERE cs.shop_id = sa.shop_id AND cs.agent = sa.uid AND cs.status = 'open') AS open_sessions
	FROM shop_agents sa JOIN users u ON u.uid = sa.uid
	WHERE sa.shop_id = ?
	ORDER BY sa.uid`

func agents(ctx context.Context, q sqlx.QueryerContext, shop int64) ([]im.Agent, error) {
	var rows []agentRow
	if err := sqlx.SelectContext(ctx, q, &rows, rebind(q, agentsQuery), shop); err != nil {
		return nil, fmt.Errorf("agents of shop %d: %w", shop, mapErr(err))
	}
	out := make([]im.Agent, len(rows))
	for i, r := range rows {
		out[i] = im.Agent{UID: r.UID, Username: r.Username, Status: r.Status, OpenSessions: r.OpenSessions, LastAssignedAt: r.LastAssignedAt}
	}
	return out, nil
}

// Agents implements im.ShopStore.
func (s *Store) Agents(ctx context.Context, shop int64) ([]im.Agent, error) {
	return agents(ctx, s.r, shop)
}

// AgentShops implements im.ShopStore.
func (s *Store) AgentShops(ctx context.Context, uid int64) ([]int64, error) {
	var ids []int64
	if err := s.r.SelectContext(ctx, &ids, s.r.Rebind(`SELECT shop_id FROM shop_agents WHERE uid = ? ORDER BY shop_id`), uid); err != nil {
		return nil, fmt.Errorf("shops of agent %d: %w", uid, mapErr(err))
	}
	return ids, nil
}

// IsAgent implements im.ShopStore.
func (s *Store) IsAgent(ctx context.Context, shop, uid int64) (bool, error) {
	var n int
	err := s.r.GetContext(ctx, &n, s.r.Rebind(`SELECT COUNT(*) FROM shop_agents WHERE shop_id = ? AND uid = ?`), shop, uid)
	if err != nil {
		return false, fmt.Errorf("agent %d of shop %d: %w", uid, shop, mapErr(err))
	}
	return n > 0, nil
}

type sessionRow struct {
	ID              int64         `db:"session_id"`
	Shop            int64         `db:"shop_id"`
	Customer        int64         `db:"customer"`
	Agent           sql.NullInt64 `db:"agent"`
	Status          string        `db:"status"`
	CreatedAt       int64         `db:"created_at"`
	AssignedAt      sql.NullInt64 `db:"assigned_at"`
	ClosedAt        sql.NullInt64 `db:"closed_at"`
	OfflineNotified bool          `db:"offline_notified"`
}

const sessionColumns = `session_id, shop_id, customer, agent, status, created_at, assigned_at, closed_at, offline_notified`

func (r sessionRow) session() im.Session {
	return im.Session{ID: r.ID, Shop: r.Shop, Customer: r.Customer, Agent: r.Agent.Int64, Status: r.Status,
		CreatedAt: r.CreatedAt, AssignedAt: r.AssignedAt.Int64, ClosedAt: r.ClosedAt.Int64, OfflineNotified: r.OfflineNotified}
}

func getSession(ctx context.Context, q sqlx.QueryerContext, where, suffix string, args ...any) (im.Session, error) {
	var r sessionRow
	if err := sqlx.GetContext(ctx, q, &r, rebind(q, `SELECT `+sessionColumns+` FROM cs_sessions WHERE `+where+suffix), args...); err != nil {
		return im.Session{}, mapErr(err)
	}
	return r.session(), nil
}

// Session implements im.ShopStore.
func (s *Store) Session(ctx context.Context, id int64) (im.Session, error) {
	sess, err := getSession(ctx, s.r, `session_id = ?`, "", id)
	if err != nil {
		return im.Session{}, fmt.Errorf("session %d: %w", id, err)
	}
	return sess, nil
}

// CurrentSession implements im.ShopStore.
func (s *Store) CurrentSession(ctx context.Context, shop, customer int64) (im.Session, bool, error) {
	sess, err := getSession(ctx, s.r, `shop_id = ? AND customer = ? AND status <> 'closed'`, "", shop, customer)
	if errors.Is(err, im.ErrNotFound) {
		return im.Session{}, false, nil
	}
	if err != nil {
		return im.Session{}, false, fmt.Errorf("session of %d with shop %d: %w", customer, shop, err)
	}
	return sess, true, nil
}

// Sessions implements im.ShopStore. Queued and open sessions come oldest
// first (queue order); all or closed ones newest first.
func (s *Store) Sessions(ctx context.Context, shop int64, status string, limit int) ([]im.Session, error) {
	where, args := `shop_id = ?`, []any{shop}
	order := `session_id DESC`
	if status != "" {
		where, args = where+` AND status = ?`, append(args, status)
		if status != im.SessionClosed {
			order = `created_at, session_id`
		}
	}
	q := `SELECT ` + sessionColumns + ` FROM cs_sessions WHERE ` + where + ` ORDER BY ` + order
	if limit > 0 {
		q, args = q+` LIMIT ?`, append(args, limit)
	}
	var rows []sessionRow
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("sessions of shop %d: %w", shop, mapErr(err))
	}
	out := make([]im.Session, len(rows))
	for i, r := range rows {
		out[i] = r.session()
	}
	return out, nil
}

// QueuedSessions implements im.ShopStore.
func (s *Store) QueuedSessions(ctx context.Context, shop int64) ([]im.Session, error) {
	return s.Sessions(ctx, shop, im.SessionQueued, 0)
}

// SetUserStatus implements im.ShopStore.
func (s *Store) SetUserStatus(ctx context.Context, uid int64, status string) error {
	if _, err := s.exec(ctx, `UPDATE users SET status = ? WHERE uid = ?`, status, uid); err != nil {
		return fmt.Errorf("status of %d: %w", uid, mapErr(err))
	}
	return nil
}

// InServiceTx implements im.ShopStore.
func (s *Store) InServiceTx(ctx context.Context, fn func(im.ServiceTx) error) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return fn(&serviceTx{s: s, tx: tx}) })
}

// serviceTx implements im.ServiceTx. Row locks (FOR UPDATE) exist on
// PostgreSQL only; SQLite's write transactions (BEGIN IMMEDIATE, one writer
// connection) are serialised as a whole.
type serviceTx struct {
	s  *Store
	tx *sqlx.Tx
}

func (t *serviceTx) forUpdate() string {
	if t.s.engine == Postgres {
		return ` FOR UPDATE`
	}
	return ""
}

func (t *serviceTx) LockShop(ctx context.Context, shop int64) (im.Shop, error) {
	return getShop(ctx, t.tx, shop, t.forUpdate())
}

func (t *serviceTx) ActiveSession(ctx context.Context, shop, customer int64) (im.Session, bool, error) {
	sess, err := getSession(ctx, t.tx, `shop_id = ? AND customer = ? AND status <> 'closed'`, t.forUpdate(), shop, customer)
	if errors.Is(err, im.ErrNotFound) {
		return im.Session{}, false, nil
	}
	if err != nil {
		return im.Session{}, false, fmt.Errorf("session of %d with shop %d: %w", customer, shop, err)
	}
	return sess, true, nil
}

func (t *serviceTx) LockSession(ctx context.Context, id int64) (im.Session, error) {
	sess, err := getSession(ctx, t.tx, `session_id = ?`, t.forUpdate(), id)
	if err != nil {
		return im.Session{}, fmt.Errorf("session %d: %w", id, err)
	}
	return sess, nil
}

func (t *serviceTx) CreateSession(ctx context.Context, sess im.Session) (im.Session, error) {
	err := t.tx.GetContext(ctx, &sess.ID, t.tx.Rebind(`
		INSERT INTO cs_sessions (shop_id, customer, agent, status, created_at, assigned_at, offline_notified)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING session_id`),
		sess.Shop, sess.Customer, nullInt(sess.Agent), sess.Status, sess.CreatedAt, nullInt(sess.AssignedAt), sess.OfflineNotified)
	if err != nil {
		return im.Session{}, fmt.Errorf("open session: %w", mapErr(err))
	}
	return sess, nil
}

func (t *serviceTx) UpdateSession(ctx context.Context, sess im.Session) error {
	_, err := t.tx.ExecContext(ctx, t.tx.Rebind(`
		UPDATE cs_sessions SET agent = ?, status = ?, assigned_at = ?, closed_at = ?, offline_notified = ? WHERE session_id = ?`),
		nullInt(sess.Agent), sess.Status, nullInt(sess.AssignedAt), nullInt(sess.ClosedAt), sess.OfflineNotified, sess.ID)
	if err != nil {
		return fmt.Errorf("update session %d: %w", sess.ID, mapErr(err))
	}
	return nil
}

func (t *serviceTx) Agents(ctx context.Context, shop int64) ([]im.Agent, error) {
	return agents(ctx, t.tx, shop)
}

func (t *serviceTx) AgentStatus(ctx context.Context, shop, uid int64) (string, bool, error) {
	var status string
	err := t.tx.GetContext(ctx, &status, t.tx.Rebind(`
		SELECT u.status FROM shop_agents sa JOIN users u ON u.uid = sa.uid WHERE sa.shop_id = ? AND sa.uid = ?`), shop, uid)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("status of agent %d: %w", uid, mapErr(err))
	}
	return status, true, nil
}

func (t *serviceTx) LastAgent(ctx context.Context, shop, customer int64) (int64, error) {
	var agent sql.NullInt64
	err := t.tx.GetContext(ctx, &agent, t.tx.Rebind(`
		SELECT agent FROM cs_sessions WHERE shop_id = ? AND customer = ? AND agent IS NOT NULL
		ORDER BY assigned_at DESC, session_id DESC LIMIT 1`), shop, customer)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last agent of %d at shop %d: %w", customer, shop, mapErr(err))
	}
	return agent.Int64, nil
}

func (t *serviceTx) MarkAssigned(ctx context.Context, shop, uid, now int64) error {
	_, err := t.tx.ExecContext(ctx, t.tx.Rebind(`UPDATE shop_agents SET last_assigned_at = ? WHERE shop_id = ? AND uid = ?`), now, shop, uid)
	if err != nil {
		return fmt.Errorf("mark agent %d assigned: %w", uid, mapErr(err))
	}
	return nil
}

func (t *serviceTx) Append(ctx context.Context, m im.Message) (im.Message, bool, error) {
	stored, dup, err := t.s.appendTx(ctx, t.tx, m)
	if errors.Is(err, errRollback) {
		err = nil // the caller rolls back
	}
	if err != nil {
		return im.Message{}, false, fmt.Errorf("append to %s: %w", m.Conv, err)
	}
	return stored, dup, nil
}

func (t *serviceTx) Unseen(ctx context.Context, session, agent int64) ([]im.Message, error) {
	var rows []messageRow
	err := t.tx.SelectContext(ctx, &rows, t.tx.Rebind(`
		SELECT `+messageColumns+` FROM messages
		WHERE session_id = ? AND (agent IS NULL OR agent <> ?)
		  AND seq > COALESCE((SELECT seq FROM cs_seen WHERE session_id = ? AND agent = ?), 0)
		ORDER BY seq`), session, agent, session, agent)
	if err != nil {
		return nil, fmt.Errorf("unseen messages of session %d: %w", session, mapErr(err))
	}
	out := make([]im.Message, len(rows))
	for i, r := range rows {
		out[i] = r.message()
	}
	_, err = t.tx.ExecContext(ctx, t.tx.Rebind(`
		INSERT INTO cs_seen (session_id, agent, seq)
		SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?
		ON CONFLICT (session_id, agent) DO UPDATE SET seq = excluded.seq`), session, agent, session)
	if err != nil {
		return nil, fmt.Errorf("mark session %d seen by %d: %w", session, agent, mapErr(err))
	}
	return out, nil
}

// rebind rewrites ? placeholders for whatever q is (a DB or a Tx).
func rebind(q sqlx.QueryerContext, query string) string {
	if b, ok := q.(interface{ Rebind(string) string }); ok {
		return b.Rebind(query)
	}
	return query
}
