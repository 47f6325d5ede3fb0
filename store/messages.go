package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
)

type messageRow struct {
	ID        string         `db:"msg_id"`
	Conv      string         `db:"conv_id"`
	Seq       int64          `db:"seq"`
	Sender    int64          `db:"sender"`
	Type      string         `db:"type"`
	Body      string         `db:"body"`
	CID       sql.NullString `db:"cid"`
	Auto      bool           `db:"auto"`
	Session   sql.NullInt64  `db:"session_id"`
	Agent     sql.NullInt64  `db:"agent"`
	CreatedAt int64          `db:"created_at"`
}

const messageColumns = `msg_id, conv_id, seq, sender, type, body, cid, auto, session_id, agent, created_at`

func (r messageRow) message() im.Message {
	return im.Message{
		ID: r.ID, Conv: r.Conv, Seq: r.Seq, From: r.Sender, Type: r.Type, Body: json.RawMessage(r.Body),
		CID: r.CID.String, TS: r.CreatedAt, Auto: r.Auto, Session: r.Session.Int64, Agent: r.Agent.Int64,
	}
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
func nullInt(n int64) sql.NullInt64      { return sql.NullInt64{Int64: n, Valid: n != 0} }

// AppendMessage implements im.MessageStore. Messages are committed in
// groups (batch.go); each is stored as appendTx would store it alone.
//
// appendTx's transaction starts by bumping the conversation's last_seq, which takes
// the conversation's write lock (a row lock on PostgreSQL, the database
// lock on SQLite) before anything else: concurrent appends to one
// conversation queue there and get contiguous seqs, and a duplicate cid is
// detected after the lock, so two copies of one publish racing each other
// store one message.
func (s *Store) AppendMessage(ctx context.Context, m im.Message) (im.Message, bool, error) {
	return s.appender.append(ctx, m)
}

// appendTx is AppendMessage inside a caller's transaction.
func (s *Store) appendTx(ctx context.Context, tx *sqlx.Tx, m im.Message) (im.Message, bool, error) {
	seq, err := s.nextSeq(ctx, tx, m.Conv, m.TS)
	if err != nil {
		return im.Message{}, false, err
	}
	if m.CID != "" {
		var r messageRow
		err := tx.GetContext(ctx, &r, tx.Rebind(`SELECT `+messageColumns+` FROM messages WHERE sender = ? AND conv_id = ? AND cid = ?`), m.From, m.Conv, m.CID)
		if err == nil {
			return r.message(), true, errRollback
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return im.Message{}, false, mapErr(err)
		}
	}
	m.Seq = seq
	_, err = tx.ExecContext(ctx, tx.Rebind(`INSERT INTO messages (`+messageColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		m.ID, m.Conv, m.Seq, m.From, m.Type, string(m.Body), nullString(m.CID), m.Auto, nullInt(m.Session), nullInt(m.Agent), m.TS)
	if err != nil {
		return im.Message{}, false, mapErr(err)
	}
	if m.From != 0 {
		if _, err := tx.ExecContext(ctx, tx.Rebind(upsertRead), m.Conv, m.From, m.Seq); err != nil {
			return im.Message{}, false, mapErr(err)
		}
	}
	return m, false, nil
}

// upsertRead raises a read position, never lowering it.
const upsertRead = `
	INSERT INTO read_positions (conv_id, uid, read_seq) VALUES (?, ?, ?)
	ON CONFLICT (conv_id, uid) DO UPDATE SET read_seq = excluded.read_seq
	WHERE read_positions.read_seq < excluded.read_seq`

// nextSeq increments the conversation's last_seq and returns it, creating
// the conversation on its first message.
func (s *Store) nextSeq(ctx context.Context, tx *sqlx.Tx, conv string, now int64) (int64, error) {
	bump := tx.Rebind(`UPDATE conversations SET last_seq = last_seq + 1, updated_at = ? WHERE conv_id = ? RETURNING last_seq`)
	var seq int64
	err := tx.GetContext(ctx, &seq, bump, now, conv)
	if !errors.Is(err, sql.ErrNoRows) {
		return seq, mapErr(err)
	}
	row, err := conversationRow(conv, 1, now)
	if err != nil {
		return 0, err
	}
	// The first message creates the conversation with last_seq 1. If a
	// concurrent first message created it between our two statements, DO
	// NOTHING waits for that transaction, and the bump below sees its row.
	res, err := tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO conversations (`+conversationColumns+`) VALUES `+conversationValues+` ON CONFLICT (conv_id) DO NOTHING`), row...)
	if err != nil {
		return 0, mapErr(err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return 1, nil
	}
	err = tx.GetContext(ctx, &seq, bump, now, conv)
	return seq, mapErr(err)
}

// conversationColumns and conversationValues insert a conversation row;
// conversationRow gives its values, the participant columns derived from
// the id.
const (
	conversationColumns = `conv_id, kind, user_a, user_b, room_id, shop_id, customer, last_seq, updated_at`
	conversationValues  = `(?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

func conversationRow(conv string, lastSeq, now int64) ([]any, error) {
	c, err := topics.ParseConv(conv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", im.ErrInvalid, err)
	}
	return []any{conv, string(c.Kind), nullInt(c.A), nullInt(c.B), nullInt(c.Room), nullInt(c.Shop), nullInt(c.Customer), lastSeq, now}, nil
}

// errRollback ends a transaction without an error for the caller.
var errRollback = errors.New("rollback")

// inTx runs fn in a write transaction and commits it, or rolls it back if
// fn fails. fn returning errRollback rolls back and reports success.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	release, err := s.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer release()
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		if errors.Is(err, errRollback) {
			return nil
		}
		return err
	}
	return mapErr(tx.Commit())
}

// History implements im.MessageStore.
func (s *Store) History(ctx context.Context, conv string, q im.HistoryQuery) ([]im.Message, error) {
	where, args := `conv_id = ?`, []any{conv}
	if q.After {
		where, args = where+` AND seq > ?`, append(args, q.AfterSeq)
	}
	if q.BeforeSeq > 0 {
		where, args = where+` AND seq < ?`, append(args, q.BeforeSeq)
	}
	order := `ASC`
	if !q.After {
		order = `DESC` // the newest page, reversed below
	}
	var rows []messageRow
	err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`SELECT `+messageColumns+` FROM messages WHERE `+where+` ORDER BY seq `+order+` LIMIT ?`), append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", conv, mapErr(err))
	}
	if order == `DESC` {
		slices.Reverse(rows)
	}
	out := make([]im.Message, len(rows))
	for i, r := range rows {
		out[i] = r.message()
	}
	return out, nil
}

// maxConversations bounds GET /conversations.
const maxConversations = 1000

// Conversations implements im.MessageStore. A user takes part in the single
// chats naming them, the rooms they are a member of, their own service
// conversations, those of the shops they are an agent of, and sys.
func (s *Store) Conversations(ctx context.Context, uid int64) ([]im.ConversationSummary, error) {
	var rows []struct {
		Conv      string         `db:"conv_id"`
		Kind      string         `db:"kind"`
		LastSeq   int64          `db:"last_seq"`
		UpdatedAt int64          `db:"updated_at"`
		ReadSeq   int64          `db:"read_seq"`
		MsgID     sql.NullString `db:"msg_id"`
		Seq       sql.NullInt64  `db:"seq"`
		Sender    sql.NullInt64  `db:"sender"`
		Type      sql.NullString `db:"type"`
		Body      sql.NullString `db:"body"`
		CID       sql.NullString `db:"cid"`
		Auto      sql.NullBool   `db:"auto"`
		Session   sql.NullInt64  `db:"session_id"`
		Agent     sql.NullInt64  `db:"agent"`
		CreatedAt sql.NullInt64  `db:"created_at"`
	}
	err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`
		SELECT c.conv_id, c.kind, c.last_seq, c.updated_at, COALESCE(rp.read_seq, 0) AS read_seq,
		       m.msg_id, m.seq, m.sender, m.type, m.body, m.cid, m.auto, m.session_id, m.agent, m.created_at
		FROM conversations c
		LEFT JOIN read_positions rp ON rp.conv_id = c.conv_id AND rp.uid = ?
		LEFT JOIN messages m ON m.conv_id = c.conv_id AND m.seq = c.last_seq
		WHERE c.conv_id IN (
			SELECT conv_id FROM conversations WHERE user_a = ?
			UNION ALL SELECT conv_id FROM conversations WHERE user_b = ?
			UNION ALL SELECT cr.conv_id FROM conversations cr JOIN room_members rm ON rm.room_id = cr.room_id WHERE rm.uid = ?
			UNION ALL SELECT conv_id FROM conversations WHERE customer = ?
			UNION ALL SELECT cs.conv_id FROM conversations cs JOIN shop_agents sa ON sa.shop_id = cs.shop_id WHERE sa.uid = ?
			UNION ALL SELECT conv_id FROM conversations WHERE kind = 'sys'
		)
		ORDER BY c.updated_at DESC, c.conv_id
		LIMIT ?`), uid, uid, uid, uid, uid, uid, maxConversations)
	if err != nil {
		return nil, fmt.Errorf("conversations of %d: %w", uid, mapErr(err))
	}
	out := make([]im.ConversationSummary, len(rows))
	for i, r := range rows {
		out[i] = im.ConversationSummary{Conv: r.Conv, Kind: topics.ConvKind(r.Kind), LastSeq: r.LastSeq, ReadSeq: r.ReadSeq, UpdatedAt: r.UpdatedAt}
		if r.MsgID.Valid {
			m := messageRow{ID: r.MsgID.String, Conv: r.Conv, Seq: r.Seq.Int64, Sender: r.Sender.Int64, Type: r.Type.String,
				Body: r.Body.String, CID: r.CID, Auto: r.Auto.Bool, Session: r.Session, Agent: r.Agent, CreatedAt: r.CreatedAt.Int64}.message()
			out[i].LastMessage = &m
		}
	}
	return out, nil
}

// MarkRead implements im.MessageStore.
func (s *Store) MarkRead(ctx context.Context, conv string, uid, seq int64) (int64, int64, bool, error) {
	res, err := s.exec(ctx, `
		INSERT INTO read_positions (conv_id, uid, read_seq)
		SELECT conv_id, CAST(? AS BIGINT), CASE WHEN last_seq < ? THEN last_seq ELSE CAST(? AS BIGINT) END FROM conversations WHERE conv_id = ?
		ON CONFLICT (conv_id, uid) DO UPDATE SET read_seq = excluded.read_seq
		WHERE read_positions.read_seq < excluded.read_seq`, uid, seq, seq, conv)
	if err != nil {
		return 0, 0, false, fmt.Errorf("mark %s read: %w", conv, mapErr(err))
	}
	n, _ := res.RowsAffected()
	var st struct {
		LastSeq int64 `db:"last_seq"`
		ReadSeq int64 `db:"read_seq"`
	}
	err = s.r.GetContext(ctx, &st, s.r.Rebind(`
		SELECT c.last_seq, COALESCE(rp.read_seq, 0) AS read_seq FROM conversations c
		LEFT JOIN read_positions rp ON rp.conv_id = c.conv_id AND rp.uid = ?
		WHERE c.conv_id = ?`), uid, conv)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, false, nil // no message yet: nothing to read
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("read position in %s: %w", conv, mapErr(err))
	}
	return st.ReadSeq, st.LastSeq, n > 0, nil
}
