package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
)

// AppendMessage implements im.MessageStore. Messages are committed in
// groups (batch.go), each stored by appendMessages (append.go).
//
// The transaction starts by bumping the conversation's last_seq, which
// takes the conversation's write lock (a row lock on PostgreSQL, the
// database lock on SQLite) before anything else: concurrent appends to one
// conversation queue there and get contiguous seqs, and a duplicate cid is
// detected after the lock, so two copies of one publish racing each other
// store one message.
func (s *Store) AppendMessage(ctx context.Context, m im.Message) (im.Message, bool, error) {
	return s.appender.appendWait(ctx, m)
}

// Append implements im.MessageStore: m is queued for the next group, and
// done is called once it is committed, in the order messages were
// queued (see batch.go).
func (s *Store) Append(m im.Message, done func(stored im.Message, dup bool, err error)) {
	s.appender.append(m, done)
}

// inTx runs fn in a write transaction (on SQLite, once the writer gate
// admits it) and commits it if fn returns im.Commit and no error;
// otherwise it rolls it back. It returns how the transaction ended and
// fn's error, or the commit's.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) (im.TxEnd, error)) (im.TxEnd, error) {
	release, err := s.lockWrite(ctx)
	if err != nil {
		return im.Rollback, err
	}
	defer release()
	tx, err := s.w.BeginTxx(ctx, nil)
	if err != nil {
		return im.Rollback, mapErr(err)
	}
	end, err := fn(tx)
	if err != nil || end == im.Rollback {
		_ = tx.Rollback()
		return im.Rollback, err
	}
	if err := tx.Commit(); err != nil {
		return im.Rollback, mapErr(err)
	}
	return im.Commit, nil
}

// write runs fn in a write transaction that commits unless fn fails.
func (s *Store) write(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	_, err := s.inTx(ctx, func(tx *sqlx.Tx) (im.TxEnd, error) {
		if err := fn(tx); err != nil {
			return im.Rollback, err
		}
		return im.Commit, nil
	})
	return err
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
	err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`SELECT `+messageSelect("")+` FROM messages WHERE `+where+` ORDER BY seq `+order+` LIMIT ?`), append(args, q.Limit)...)
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
		PeerRead  int64          `db:"peer_read_seq"`
		MsgID     sql.NullString `db:"msg_id"`
		Seq       sql.NullInt64  `db:"seq"`
		Sender    sql.NullInt64  `db:"sender"`
		Type      sql.NullString `db:"type"`
		Body      sql.NullString `db:"body"`
		CID       sql.NullString `db:"cid"`
		Auto      sql.NullBool   `db:"auto"`
		Ticket    sql.NullInt64  `db:"session_id"`
		Agent     sql.NullInt64  `db:"agent"`
		CreatedAt sql.NullInt64  `db:"created_at"`
	}
	err := s.r.SelectContext(ctx, &rows, s.r.Rebind(`
		SELECT c.conv_id, c.kind, c.last_seq, c.updated_at, COALESCE(rp.read_seq, 0) AS read_seq,
		       COALESCE(CASE
		           WHEN c.kind = 'single' THEN (SELECT p.read_seq FROM read_positions p
		               WHERE p.conv_id = c.conv_id AND p.uid = CASE WHEN c.user_a = ? THEN c.user_b ELSE c.user_a END)
		           WHEN c.kind = 'service' AND c.customer = ? THEN (SELECT MAX(p.read_seq) FROM read_positions p
		               JOIN shop_agents sa ON sa.uid = p.uid AND sa.shop_id = c.shop_id WHERE p.conv_id = c.conv_id)
		           WHEN c.kind = 'service' THEN (SELECT p.read_seq FROM read_positions p
		               WHERE p.conv_id = c.conv_id AND p.uid = c.customer)
		       END, 0) AS peer_read_seq,
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
		LIMIT ?`), uid, uid, uid, uid, uid, uid, uid, uid, maxConversations)
	if err != nil {
		return nil, fmt.Errorf("conversations of %d: %w", uid, mapErr(err))
	}
	out := make([]im.ConversationSummary, len(rows))
	for i, r := range rows {
		out[i] = im.ConversationSummary{Conv: r.Conv, Kind: topics.ConvKind(r.Kind), LastSeq: r.LastSeq, ReadSeq: r.ReadSeq, PeerReadSeq: r.PeerRead, UpdatedAt: r.UpdatedAt}
		if r.MsgID.Valid {
			m := messageRow{ID: r.MsgID.String, Conv: r.Conv, Seq: r.Seq.Int64, Sender: r.Sender.Int64, Type: r.Type.String,
				Body: r.Body.String, CID: r.CID, Auto: r.Auto.Bool, Ticket: r.Ticket, Agent: r.Agent, CreatedAt: r.CreatedAt.Int64}.message()
			out[i].LastMessage = &m
		}
	}
	return out, nil
}

// MarkRead implements im.MessageStore.
func (s *Store) MarkRead(ctx context.Context, conv string, uid, seq int64) (im.ReadPosition, bool, error) {
	res, err := s.exec(ctx, `
		INSERT INTO read_positions (conv_id, uid, read_seq)
		SELECT conv_id, CAST(? AS BIGINT), CASE WHEN last_seq < ? THEN last_seq ELSE CAST(? AS BIGINT) END FROM conversations WHERE conv_id = ?
		ON CONFLICT (conv_id, uid) DO UPDATE SET read_seq = excluded.read_seq
		WHERE read_positions.read_seq < excluded.read_seq`, uid, seq, seq, conv)
	if err != nil {
		return im.ReadPosition{}, false, fmt.Errorf("mark %s read: %w", conv, mapErr(err))
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
		return im.ReadPosition{Conv: conv}, false, nil // no message yet: nothing to read
	}
	if err != nil {
		return im.ReadPosition{}, false, fmt.Errorf("read position in %s: %w", conv, mapErr(err))
	}
	return im.ReadPosition{Conv: conv, ReadSeq: st.ReadSeq, LastSeq: st.LastSeq}, n > 0, nil
}
