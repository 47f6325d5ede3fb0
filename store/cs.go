package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
	var krs []keywordReply
	if err := json.Unmarshal([]byte(r.KeywordReplies), &krs); err != nil {
		return s, fmt.Errorf("shop %d: keyword_replies: %w", r.ID, err)
	}
	s.KeywordReplies = make([]im.KeywordReply, len(krs))
	for i, kr := range krs {
		s.KeywordReplies[i] = im.KeywordReply(kr)
	}
	return s, nil
}

// keywordReply is how a keyword reply is kept in the keyword_replies
// column, a JSON list.
type keywordReply struct {
	Keyword string `json:"keyword"`
	Reply   string `json:"reply"`
}

func keywordJSON(krs []im.KeywordReply) string {
	out := make([]keywordReply, len(krs))
	for i, kr := range krs {
		out[i] = keywordReply(kr)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// CreateShop implements im.SupportStore.
func (s *Store) CreateShop(ctx context.Context, shop im.Shop) (im.Shop, error) {
	err := s.getw(ctx, &shop.ID, `
		INSERT INTO shops (name, welcome_message, offline_message, keyword_replies, identity_secret, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING shop_id`,
		shop.Name, shop.WelcomeMessage, shop.OfflineMessage, keywordJSON(shop.KeywordReplies), shop.IdentitySecret, shop.CreatedAt, shop.CreatedAt)
	if err != nil {
		return im.Shop{}, fmt.Errorf("insert shop: %w", mapErr(err))
	}
	return shop, nil
}

// UpdateShop implements im.SupportStore.
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

// Shop implements im.SupportStore.
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

// ShopFor implements im.SupportStore: the shop and whether uid is one of
// its agents, in one query.
func (s *Store) ShopFor(ctx context.Context, id, uid int64) (im.Shop, bool, error) {
	var r struct {
		shopRow
		IsAgent bool `db:"is_agent"`
	}
	err := s.r.GetContext(ctx, &r, s.r.Rebind(`
		SELECT `+shopColumns+`, EXISTS (SELECT 1 FROM shop_agents WHERE shop_id = ? AND uid = ?) AS is_agent
		FROM shops WHERE shop_id = ?`), id, uid, id)
	if err != nil {
		return im.Shop{}, false, fmt.Errorf("shop %d: %w", id, mapErr(err))
	}
	shop, err := r.shop()
	return shop, r.IsAgent, err
}

// Shops implements im.SupportStore.
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

// AddAgent implements im.SupportStore.
func (s *Store) AddAgent(ctx context.Context, shop, uid, now int64) error {
	_, err := s.exec(ctx, `
		INSERT INTO shop_agents (shop_id, uid, added_at) VALUES (?, ?, ?) ON CONFLICT (shop_id, uid) DO NOTHING`, shop, uid, now)
	if err != nil {
		return fmt.Errorf("add agent %d to shop %d: %w", uid, shop, mapErr(err))
	}
	return nil
}

// RemoveAgent implements im.SupportStore.
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
	OpenTickets    int64  `db:"open_sessions"`
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
		out[i] = im.Agent{UID: r.UID, Username: r.Username, Status: r.Status, OpenTickets: r.OpenTickets, LastAssignedAt: r.LastAssignedAt}
	}
	return out, nil
}

// Agents implements im.SupportStore.
func (s *Store) Agents(ctx context.Context, shop int64) ([]im.Agent, error) {
	return agents(ctx, s.r, shop)
}

// AgentShops implements im.SupportStore.
func (s *Store) AgentShops(ctx context.Context, uid int64) ([]int64, error) {
	var ids []int64
	if err := s.r.SelectContext(ctx, &ids, s.r.Rebind(`SELECT shop_id FROM shop_agents WHERE uid = ? ORDER BY shop_id`), uid); err != nil {
		return nil, fmt.Errorf("shops of agent %d: %w", uid, mapErr(err))
	}
	return ids, nil
}

// IsAgent implements im.SupportStore.
func (s *Store) IsAgent(ctx context.Context, shop, uid int64) (bool, error) {
	var n int
	err := s.r.GetContext(ctx, &n, s.r.Rebind(`SELECT COUNT(*) FROM shop_agents WHERE shop_id = ? AND uid = ?`), shop, uid)
	if err != nil {
		return false, fmt.Errorf("agent %d of shop %d: %w", uid, shop, mapErr(err))
	}
	return n > 0, nil
}

// ticketRow is a row of cs_sessions: im's tickets.
type ticketRow struct {
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

const ticketColumns = `session_id, shop_id, customer, agent, status, created_at, assigned_at, closed_at, offline_notified`

// ticketSelect is ticketColumns, each prefixed with alias and a dot.
func ticketSelect(alias string) string {
	return alias + "." + strings.ReplaceAll(ticketColumns, ", ", ", "+alias+".")
}

func (r ticketRow) ticket() im.Ticket {
	return im.Ticket{ID: r.ID, Shop: r.Shop, Customer: r.Customer, Agent: r.Agent.Int64, Status: r.Status,
		CreatedAt: r.CreatedAt, AssignedAt: r.AssignedAt.Int64, ClosedAt: r.ClosedAt.Int64, OfflineNotified: r.OfflineNotified}
}

func getTicket(ctx context.Context, q sqlx.QueryerContext, where, suffix string, args ...any) (im.Ticket, error) {
	var r ticketRow
	if err := sqlx.GetContext(ctx, q, &r, rebind(q, `SELECT `+ticketColumns+` FROM cs_sessions WHERE `+where+suffix), args...); err != nil {
		return im.Ticket{}, mapErr(err)
	}
	return r.ticket(), nil
}

// activeTicket returns the customer's ticket with the shop that is not
// closed, if there is one (at most one is: an index says so).
func activeTicket(ctx context.Context, q sqlx.QueryerContext, shop, customer int64, suffix string) (im.Ticket, bool, error) {
	t, err := getTicket(ctx, q, `shop_id = ? AND customer = ? AND status <> 'closed'`, suffix, shop, customer)
	if errors.Is(err, im.ErrNotFound) {
		return im.Ticket{}, false, nil
	}
	if err != nil {
		return im.Ticket{}, false, fmt.Errorf("session of %d with shop %d: %w", customer, shop, err)
	}
	return t, true, nil
}

// Ticket implements im.SupportStore.
func (s *Store) Ticket(ctx context.Context, id int64) (im.Ticket, error) {
	t, err := getTicket(ctx, s.r, `session_id = ?`, "", id)
	if err != nil {
		return im.Ticket{}, fmt.Errorf("session %d: %w", id, err)
	}
	return t, nil
}

// CurrentTicket implements im.SupportStore.
func (s *Store) CurrentTicket(ctx context.Context, shop, customer int64) (im.Ticket, bool, error) {
	return activeTicket(ctx, s.r, shop, customer, "")
}

// Tickets implements im.SupportStore.
func (s *Store) Tickets(ctx context.Context, shop int64, status string, limit int) ([]im.Ticket, error) {
	where, args := `shop_id = ?`, []any{shop}
	order := `session_id DESC`
	if status != "" {
		where, args = where+` AND status = ?`, append(args, status)
		if status != im.TicketClosed {
			order = `created_at, session_id`
		}
	}
	q := `SELECT ` + ticketColumns + ` FROM cs_sessions WHERE ` + where + ` ORDER BY ` + order
	if limit > 0 {
		q, args = q+` LIMIT ?`, append(args, limit)
	}
	var rows []ticketRow
	if err := s.r.SelectContext(ctx, &rows, s.r.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("sessions of shop %d: %w", shop, mapErr(err))
	}
	out := make([]im.Ticket, len(rows))
	for i, r := range rows {
		out[i] = r.ticket()
	}
	return out, nil
}

// SetUserStatus implements im.SupportStore.
func (s *Store) SetUserStatus(ctx context.Context, uid int64, status string) error {
	if _, err := s.exec(ctx, `UPDATE users SET status = ? WHERE uid = ?`, status, uid); err != nil {
		return fmt.Errorf("status of %d: %w", uid, mapErr(err))
	}
	return nil
}

// SupportWrite implements im.SupportStore: fn runs in the write pipeline
// (batch.go), in the transaction of a group, and after is called in the
// pipeline's order.
func (s *Store) SupportWrite(fn func(context.Context, im.SupportTx) (im.TxEnd, error), after func(error)) {
	s.appender.runJob(func(ctx context.Context, tx *sqlx.Tx) (im.TxEnd, error) {
		return fn(ctx, &supportTx{s: s, tx: tx})
	}, after)
}

// supportTx implements im.SupportTx. Row locks (FOR UPDATE) exist on
// PostgreSQL only; SQLite's write transactions (BEGIN IMMEDIATE, one writer
// connection) are serialised as a whole.
type supportTx struct {
	s     *Store
	tx    *sqlx.Tx
	agent *agentStatus // the last active ticket's agent, read with it
}

func (t *supportTx) forUpdate() string {
	if t.s.engine == Postgres {
		return ` FOR UPDATE`
	}
	return ""
}

func (t *supportTx) LockShop(ctx context.Context, shop int64) (im.Shop, error) {
	return getShop(ctx, t.tx, shop, t.forUpdate())
}

// ActiveTicket reads, in the same statement, the status of the ticket's
// agent, which the next call (AgentStatus, on the dispatcher's fast path)
// usually asks for: one round trip instead of two.
func (t *supportTx) ActiveTicket(ctx context.Context, shop, customer int64) (im.Ticket, bool, error) {
	var r struct {
		ticketRow
		AgentStatus sql.NullString `db:"agent_status"`
	}
	lock := ""
	if t.s.engine == Postgres {
		lock = ` FOR UPDATE OF t`
	}
	err := t.tx.GetContext(ctx, &r, t.tx.Rebind(`
		SELECT `+ticketSelect("t")+`, u.status AS agent_status
		FROM cs_sessions t
		LEFT JOIN shop_agents sa ON sa.shop_id = t.shop_id AND sa.uid = t.agent
		LEFT JOIN users u ON u.uid = sa.uid
		WHERE t.shop_id = ? AND t.customer = ? AND t.status <> 'closed'`+lock), shop, customer)
	if errors.Is(err, sql.ErrNoRows) {
		return im.Ticket{}, false, nil
	}
	if err != nil {
		return im.Ticket{}, false, fmt.Errorf("session of %d with shop %d: %w", customer, shop, mapErr(err))
	}
	if r.Agent.Valid {
		t.agent = &agentStatus{shop: shop, uid: r.Agent.Int64, status: r.AgentStatus.String, isAgent: r.AgentStatus.Valid}
	}
	return r.ticket(), true, nil
}

// agentStatus is AgentStatus' answer, read ahead by ActiveTicket.
type agentStatus struct {
	shop, uid int64
	status    string
	isAgent   bool
}

func (t *supportTx) LockTicket(ctx context.Context, id int64) (im.Ticket, error) {
	tk, err := getTicket(ctx, t.tx, `session_id = ?`, t.forUpdate(), id)
	if err != nil {
		return im.Ticket{}, fmt.Errorf("session %d: %w", id, err)
	}
	return tk, nil
}

func (t *supportTx) CreateTicket(ctx context.Context, tk im.Ticket) (im.Ticket, error) {
	err := t.tx.GetContext(ctx, &tk.ID, t.tx.Rebind(`
		INSERT INTO cs_sessions (shop_id, customer, agent, status, created_at, assigned_at, offline_notified)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING session_id`),
		tk.Shop, tk.Customer, nullInt(tk.Agent), tk.Status, tk.CreatedAt, nullInt(tk.AssignedAt), tk.OfflineNotified)
	if err != nil {
		return im.Ticket{}, fmt.Errorf("open session: %w", mapErr(err))
	}
	return tk, nil
}

func (t *supportTx) UpdateTicket(ctx context.Context, tk im.Ticket) error {
	_, err := t.tx.ExecContext(ctx, t.tx.Rebind(`
		UPDATE cs_sessions SET agent = ?, status = ?, assigned_at = ?, closed_at = ?, offline_notified = ? WHERE session_id = ?`),
		nullInt(tk.Agent), tk.Status, nullInt(tk.AssignedAt), nullInt(tk.ClosedAt), tk.OfflineNotified, tk.ID)
	if err != nil {
		return fmt.Errorf("update session %d: %w", tk.ID, mapErr(err))
	}
	return nil
}

func (t *supportTx) Agents(ctx context.Context, shop int64) ([]im.Agent, error) {
	return agents(ctx, t.tx, shop)
}

func (t *supportTx) AgentStatus(ctx context.Context, shop, uid int64) (string, bool, error) {
	if a := t.agent; a != nil && a.shop == shop && a.uid == uid {
		return a.status, a.isAgent, nil // read with the ticket
	}
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

func (t *supportTx) LastAgent(ctx context.Context, shop, customer int64) (int64, error) {
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

func (t *supportTx) MarkAssigned(ctx context.Context, shop, uid, now int64) error {
	_, err := t.tx.ExecContext(ctx, t.tx.Rebind(`UPDATE shop_agents SET last_assigned_at = ? WHERE shop_id = ? AND uid = ?`), now, shop, uid)
	if err != nil {
		return fmt.Errorf("mark agent %d assigned: %w", uid, mapErr(err))
	}
	return nil
}

func (t *supportTx) Append(ctx context.Context, m im.Message) (im.Message, bool, error) {
	stored, dup, err := t.s.appendTx(ctx, t.tx, m)
	if err != nil {
		return im.Message{}, false, fmt.Errorf("append to %s: %w", m.Conv, err)
	}
	return stored, dup, nil
}

func (t *supportTx) CustomerTickets(ctx context.Context, customer int64) ([]im.Ticket, error) {
	var rows []ticketRow
	err := t.tx.SelectContext(ctx, &rows, t.tx.Rebind(`
		SELECT `+ticketColumns+` FROM cs_sessions WHERE customer = ? AND status <> 'closed' ORDER BY session_id`), customer)
	if err != nil {
		return nil, fmt.Errorf("sessions of customer %d: %w", customer, mapErr(err))
	}
	out := make([]im.Ticket, len(rows))
	for i, r := range rows {
		out[i] = r.ticket()
	}
	return out, nil
}

func (t *supportTx) QueuePosition(ctx context.Context, tk im.Ticket) (int, error) {
	var ahead int
	err := t.tx.GetContext(ctx, &ahead, t.tx.Rebind(`
		SELECT COUNT(*) FROM cs_sessions WHERE shop_id = ? AND status = 'queued'
		AND (created_at < ? OR (created_at = ? AND session_id < ?))`), tk.Shop, tk.CreatedAt, tk.CreatedAt, tk.ID)
	if err != nil {
		return 0, fmt.Errorf("queue position of session %d: %w", tk.ID, mapErr(err))
	}
	return ahead + 1, nil
}

func (t *supportTx) Unseen(ctx context.Context, ticket, agent int64) ([]im.Message, error) {
	var rows []messageRow
	err := t.tx.SelectContext(ctx, &rows, t.tx.Rebind(`
		SELECT `+messageSelect("")+` FROM messages
		WHERE session_id = ? AND (agent IS NULL OR agent <> ?)
		  AND seq > COALESCE((SELECT seq FROM cs_seen WHERE session_id = ? AND agent = ?), 0)
		ORDER BY seq`), ticket, agent, ticket, agent)
	if err != nil {
		return nil, fmt.Errorf("unseen messages of session %d: %w", ticket, mapErr(err))
	}
	out := make([]im.Message, len(rows))
	for i, r := range rows {
		out[i] = r.message()
	}
	_, err = t.tx.ExecContext(ctx, t.tx.Rebind(`
		INSERT INTO cs_seen (session_id, agent, seq)
		SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?
		ON CONFLICT (session_id, agent) DO UPDATE SET seq = excluded.seq`), ticket, agent, ticket)
	if err != nil {
		return nil, fmt.Errorf("mark session %d seen by %d: %w", ticket, agent, mapErr(err))
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
