package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/imserver/imserver/im"
)

// sqlAppendToOpen is AppendToOpen on PostgreSQL: one statement, one round
// trip. t locks the ticket if it is still open with the agent, who is
// still an agent of its shop and not away; only then is the
// conversation's seq bumped (the ticket's lock first, then the
// conversation's, as everywhere), the message inserted (a re-sent cid
// skipped) and the sender's read position moved. No row back means
// nothing was written.
var sqlAppendToOpen = `
	WITH t AS (
		SELECT ` + ticketSelect("t") + `
		FROM cs_sessions t
		JOIN shop_agents sa ON sa.shop_id = t.shop_id AND sa.uid = t.agent
		JOIN users u ON u.uid = sa.uid
		WHERE t.session_id = CAST($1 AS BIGINT) AND t.agent = CAST($2 AS BIGINT) AND t.status = 'open' AND u.status <> 'away'
		FOR UPDATE OF t
	),
	bumped AS (
		UPDATE conversations SET last_seq = last_seq + 1, updated_at = CAST($3 AS BIGINT)
		WHERE conv_id = CAST($4 AS TEXT) AND EXISTS (SELECT 1 FROM t)
		RETURNING last_seq
	),
	ins AS (
		INSERT INTO messages (` + messageSelect("") + `)
		SELECT CAST($5 AS TEXT), CAST($4 AS TEXT), b.last_seq, CAST($6 AS BIGINT), CAST($7 AS TEXT), CAST($8 AS TEXT),
			CAST($9 AS TEXT), false, CAST($1 AS BIGINT), CAST($2 AS BIGINT), CAST($3 AS BIGINT) FROM bumped b
		ON CONFLICT (sender, conv_id, cid) WHERE cid IS NOT NULL DO NOTHING
		RETURNING seq, sender
	),
	rp AS (
		INSERT INTO read_positions (conv_id, uid, read_seq)
		SELECT CAST($4 AS TEXT), sender, seq FROM ins WHERE sender <> 0
		ON CONFLICT (conv_id, uid) DO UPDATE SET read_seq = excluded.read_seq
		WHERE read_positions.read_seq < excluded.read_seq
	)
	SELECT t.*, b.last_seq, (SELECT count(*) FROM ins) AS inserted FROM t JOIN bumped b ON true`

// AppendToOpen implements im.SupportTx.
func (t *supportTx) AppendToOpen(ctx context.Context, id, agent int64, m im.Message) (im.Ticket, im.Message, bool, bool, error) {
	if t.s.engine != Postgres {
		return t.appendToOpenSteps(ctx, id, agent, m)
	}
	st, err := t.s.prepared(ctx, t.tx, sqlAppendToOpen)
	if err != nil {
		return im.Ticket{}, im.Message{}, false, false, fmt.Errorf("append to session %d: %w", id, mapErr(err))
	}
	var r struct {
		ticketRow
		LastSeq  int64 `db:"last_seq"`
		Inserted int   `db:"inserted"`
	}
	err = st.GetContext(ctx, &r, id, agent, m.TS, m.Conv, m.ID, m.From, m.Type, string(m.Body), nullString(m.CID))
	if errors.Is(err, sql.ErrNoRows) {
		return im.Ticket{}, im.Message{}, false, false, nil // not open with agent any more: nothing written
	}
	if err != nil {
		return im.Ticket{}, im.Message{}, false, false, fmt.Errorf("append to session %d: %w", id, mapErr(err))
	}
	tk := r.ticket()
	if r.Inserted == 0 { // re-sent: the seq was taken, the caller rolls back
		dups, err := t.s.findDups(ctx, t.tx, []im.Message{m})
		if err != nil {
			return tk, im.Message{}, true, false, err
		}
		d, ok := dups[keyOf(m)]
		if !ok {
			return tk, im.Message{}, true, false, fmt.Errorf("append to session %d: not stored, and no copy found", id)
		}
		return tk, d, true, true, nil
	}
	m.Seq, m.Ticket, m.Agent = r.LastSeq, id, agent
	return tk, m, true, false, nil
}

// appendToOpenSteps is AppendToOpen in steps, for SQLite, where a step
// costs no round trip.
func (t *supportTx) appendToOpenSteps(ctx context.Context, id, agent int64, m im.Message) (im.Ticket, im.Message, bool, bool, error) {
	tk, err := t.LockTicket(ctx, id)
	if errors.Is(err, im.ErrNotFound) {
		return im.Ticket{}, im.Message{}, false, false, nil
	}
	if err != nil || tk.Status != im.TicketOpen || tk.Agent != agent {
		return im.Ticket{}, im.Message{}, false, false, err
	}
	status, isAgent, err := t.AgentStatus(ctx, tk.Shop, agent)
	if err != nil || !isAgent || status == im.StatusAway {
		return im.Ticket{}, im.Message{}, false, false, err
	}
	m.Ticket, m.Agent = id, agent
	stored, dup, err := t.Append(ctx, m)
	if err != nil {
		return tk, im.Message{}, true, false, err
	}
	return tk, stored, true, dup, nil
}
