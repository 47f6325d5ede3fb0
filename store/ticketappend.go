package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
)

// SupportAppend implements im.SupportStore. Its write is a job that tries
// the open ticket first (AppendToOpen), then fn; on PostgreSQL a group's
// consecutive ones are stored in one statement instead (runOpen).
func (s *Store) SupportAppend(open func() (im.OpenAppend, bool), fn func(context.Context, im.SupportTx) (im.TxEnd, error), after func(error)) {
	s.appender.push(s.openReq(open, fn, after))
}

func (s *Store) openReq(open func() (im.OpenAppend, bool), fn func(context.Context, im.SupportTx) (im.TxEnd, error), after func(error)) *appendReq {
	fallback := func(ctx context.Context, tx *sqlx.Tx) (im.TxEnd, error) {
		return fn(ctx, &supportTx{s: s, tx: tx})
	}
	return &appendReq{open: open, fallback: fallback, after: after,
		job: func(ctx context.Context, tx *sqlx.Tx) (im.TxEnd, error) {
			if oa, ok := open(); ok {
				t, stored, held, dup, err := (&supportTx{s: s, tx: tx}).AppendToOpen(ctx, oa.Ticket, oa.Agent, oa.Msg)
				if err != nil {
					return im.Rollback, err
				}
				if held {
					oa.Held(t, stored, dup)
					if dup {
						return im.Rollback, nil // the seq was taken
					}
					return im.Commit, nil
				}
			}
			return fallback(ctx, tx)
		}}
}

// runOpen runs reqs, consecutive SupportAppend writes of a group, without
// savepoints, on PostgreSQL: their messages are stored where they most
// likely go in one statement per batch (appendToOpen). A batch ends before
// a message with nowhere to go, or whose conversation goes to another
// ticket in the batch, so that the messages of one conversation in a batch
// are all stored or none. Those not stored run their full path, through
// runJob, in their order. It returns false, with the error if any, when the
// transaction must end: errJobUndone for a re-sent message in a batch (the
// group runs again, each write on its own path).
func (a *appender) runOpen(ctx context.Context, tx *sqlx.Tx, reqs []*appendReq, out []appendRes, runJob func(i int) (bool, error)) (bool, error) {
	for k := 0; k < len(reqs); {
		var batch []im.OpenAppend
		where := map[string][2]int64{}
		for _, r := range reqs[k:] {
			oa, ok := r.open()
			if !ok {
				break
			}
			to := [2]int64{oa.Ticket, oa.Agent}
			if w, seen := where[oa.Msg.Conv]; seen && w != to {
				break
			}
			where[oa.Msg.Conv] = to
			batch = append(batch, oa)
		}
		if len(batch) == 0 { // nowhere known to go: the full path
			if ok, err := runJob(k); !ok {
				return false, err
			}
			k++
			continue
		}
		res, short, err := a.s.appendToOpen(ctx, tx, batch)
		if err != nil {
			return false, err
		}
		if short {
			return false, errJobUndone
		}
		for b, r := range res {
			if r.held {
				batch[b].Held(r.t, r.m, false) // its answer: no error
			} else if ok, err := runJob(k + b); !ok {
				return false, err
			}
		}
		k += len(batch)
	}
	return true, nil
}

// sqlAppendToOpen stores a batch of customers' messages, each in the
// ticket it names (its session_id and agent), on PostgreSQL: one
// statement, one round trip. t locks the tickets still open with their
// agent, who is still an agent of the shop and not away (in id order);
// only their conversations' seqs are bumped (the tickets' locks first,
// then the conversations', as everywhere) and their messages inserted
// (re-sent cids skipped), and the senders' read positions moved. It
// returns a row per ticket kept, with its conversation's new last seq,
// how many messages it took, and how many were inserted in all.
var sqlAppendToOpen = func() string {
	params, names := placedParams(1)
	return `
	WITH m AS (
		SELECT * FROM unnest(` + strings.Join(params, ", ") + `) AS m(` + strings.Join(names, ", ") + `)
	),
	t AS (
		SELECT ` + ticketSelect("t") + `
		FROM cs_sessions t
		JOIN shop_agents sa ON sa.shop_id = t.shop_id AND sa.uid = t.agent
		JOIN users u ON u.uid = sa.uid
		WHERE (t.session_id, t.agent) IN (SELECT session_id, agent FROM m) AND t.status = 'open' AND u.status <> 'away'
		ORDER BY t.session_id
		FOR UPDATE OF t
	),
	n AS (
		SELECT m.conv_id, count(*) AS n, max(m.created_at) AS ts
		FROM m JOIN t ON t.session_id = m.session_id AND t.agent = m.agent
		GROUP BY m.conv_id
	),
	bumped AS (
		UPDATE conversations c SET last_seq = c.last_seq + n.n, updated_at = n.ts
		FROM n WHERE c.conv_id = n.conv_id
		RETURNING c.conv_id, c.last_seq, n.n
	),
	ins AS (
		INSERT INTO messages (` + messageSelect("") + `)
		SELECT ` + placedSelect("b.last_seq - b.n + m.ord") + ` FROM m JOIN bumped b ON b.conv_id = m.conv_id
		ON CONFLICT (sender, conv_id, cid) WHERE cid IS NOT NULL DO NOTHING
		RETURNING conv_id, sender, seq
	),
	rp AS (` + sqlReadPositions("ins") + `)
	SELECT t.*, b.conv_id, b.last_seq, b.n, (SELECT count(*) FROM ins) AS inserted
	FROM t
	JOIN (SELECT DISTINCT session_id, conv_id FROM m) mc ON mc.session_id = t.session_id
	JOIN bumped b ON b.conv_id = mc.conv_id`
}()

// openRes is what appendToOpen did with a message: held if stored in its
// ticket (t, as locked), with its seq.
type openRes struct {
	held bool
	t    im.Ticket
	m    im.Message
}

// appendToOpen stores each message of oas in its ticket if the ticket is
// still open with its agent, who still serves the shop and is not away,
// in one statement (sqlAppendToOpen). The messages of one conversation
// must name the same ticket and agent: they are stored all or none. short
// reports a re-sent message among those stored (its seq was taken): the
// caller rolls back.
func (s *Store) appendToOpen(ctx context.Context, tx *sqlx.Tx, oas []im.OpenAppend) (res []openRes, short bool, err error) {
	msgs := make([]im.Message, len(oas))
	ord := make([]int64, len(oas))
	n := map[string]int64{}
	for i, oa := range oas {
		m := oa.Msg
		m.Ticket, m.Agent = oa.Ticket, oa.Agent
		msgs[i] = m
		n[m.Conv]++
		ord[i] = n[m.Conv]
	}
	st, err := s.prepared(ctx, tx, sqlAppendToOpen)
	if err != nil {
		return nil, false, fmt.Errorf("append to sessions: %w", mapErr(err))
	}
	var rows []struct {
		ticketRow
		Conv     string `db:"conv_id"`
		LastSeq  int64  `db:"last_seq"`
		N        int64  `db:"n"`
		Inserted int    `db:"inserted"`
	}
	if err := st.SelectContext(ctx, &rows, arrayArgs(len(msgs), placedCols(msgs, ord))...); err != nil {
		return nil, false, fmt.Errorf("append to sessions: %w", mapErr(err))
	}
	kept := map[string]int{} // conversation: its row
	inserted := 0
	for i, r := range rows {
		if r.N != n[r.Conv] {
			return nil, false, fmt.Errorf("append to session %d: %d of %d messages of %s", r.ID, r.N, n[r.Conv], r.Conv)
		}
		kept[r.Conv] = i
		inserted = r.Inserted // the same on every row
	}
	res = make([]openRes, len(msgs))
	held := 0
	for i, m := range msgs {
		k, ok := kept[m.Conv]
		if !ok || rows[k].ID != m.Ticket {
			continue
		}
		m.Seq = rows[k].LastSeq - rows[k].N + ord[i]
		res[i] = openRes{held: true, t: rows[k].ticket(), m: m}
		held++
	}
	return res, inserted < held, nil
}

// AppendToOpen stores m in ticket id if it is still open with agent, who
// is still an agent of its shop and not away, as Append does (dup means
// the same); ok reports that it did, with the ticket as locked. Otherwise
// nothing is written.
func (t *supportTx) AppendToOpen(ctx context.Context, id, agent int64, m im.Message) (im.Ticket, im.Message, bool, bool, error) {
	if t.s.engine != Postgres {
		return t.appendToOpenSteps(ctx, id, agent, m)
	}
	res, short, err := t.s.appendToOpen(ctx, t.tx, []im.OpenAppend{{Ticket: id, Agent: agent, Msg: m}})
	if err != nil || !res[0].held {
		return im.Ticket{}, im.Message{}, false, false, err
	}
	tk := res[0].t
	if short { // re-sent: the seq was taken, the caller rolls back
		dups, err := t.s.resent(ctx, t.tx, []im.Message{m}, 0)
		return tk, dups[keyOf(m)], true, err == nil, err
	}
	return tk, res[0].m, true, false, nil
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
