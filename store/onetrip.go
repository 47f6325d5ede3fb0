package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
)

// On PostgreSQL a group of messages (nothing else) is stored in one
// statement, outside any explicit transaction: one round trip, and the
// statement's own commit. Its data-modifying CTEs do what appendMessages'
// three statements do:
//
//	bumped:  INSERT INTO conversations … ON CONFLICT DO UPDATE SET last_seq = last_seq + n RETURNING
//	ins:     INSERT INTO messages … seq = the conversation's new last_seq - n + the message's place
//	rp:      INSERT INTO read_positions … ON CONFLICT DO UPDATE …
//
// A message whose cid was stored before makes the statement fail with a
// unique violation, storing nothing: the group then runs in a transaction
// (batch.go), which finds the re-sent ones.
//
// Inside a transaction (a group with customer-service work, or after such a
// failure) appendMessages runs the statement's other form: re-sent
// messages are skipped (ON CONFLICT DO NOTHING), read positions follow the
// rows inserted, and the statement says how many were; fewer than given
// means re-sent ones, which the caller rolls back as after the three
// statements. One round trip instead of three there too.

// sqlOneTrip is the statement, outside a transaction or, inTx, inside
// one. $1–$9 are the conversations (as bumpSeqs has them, sorted by id:
// the locks are taken in that order), then the messages' columns and their
// place in their conversation (ord).
func sqlOneTrip(inTx bool) string {
	convNames := []string{"conv_id", "kind", "user_a", "user_b", "room_id", "shop_id", "customer", "last_seq", "updated_at"}
	convTypes := []string{"TEXT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT"}
	var convParams []string
	p := 1
	for _, t := range convTypes {
		convParams = append(convParams, fmt.Sprintf("CAST($%d AS %s[])", p, t))
		p++
	}
	msgParams, mcols := placedParams(p)
	insTail, readFrom, inserted := "", "numbered", "0"
	if inTx {
		insTail = `
			ON CONFLICT (sender, conv_id, cid) WHERE cid IS NOT NULL DO NOTHING
			RETURNING conv_id, sender, seq`
		readFrom, inserted = "ins", "(SELECT count(*) FROM ins)"
	}
	return `
		WITH bumped AS (
			INSERT INTO conversations (` + strings.Join(convNames, ", ") + `)
			SELECT * FROM unnest(` + strings.Join(convParams, ", ") + `) AS v(` + strings.Join(convNames, ", ") + `) WHERE true
			ON CONFLICT (conv_id) DO UPDATE SET last_seq = conversations.last_seq + excluded.last_seq, updated_at = excluded.updated_at
			RETURNING conv_id, last_seq
		),
		numbered AS (
			SELECT ` + placedSelect("b.last_seq - c.n + m.ord") + `
			FROM unnest(` + strings.Join(msgParams, ", ") + `) AS m(` + strings.Join(mcols, ", ") + `)
			JOIN bumped b ON b.conv_id = m.conv_id
			JOIN unnest(CAST($1 AS TEXT[]), CAST($8 AS BIGINT[])) AS c(conv_id, n) ON c.conv_id = m.conv_id
		),
		ins AS (
			INSERT INTO messages (` + messageSelect("") + `) SELECT * FROM numbered` + insTail + `
		),
		rp AS (` + sqlReadPositions(readFrom) + `)
		SELECT conv_id, last_seq, ` + inserted + ` AS inserted FROM bumped`
}

// placedParams are the unnest arguments, from parameter $first on, and
// the column names of a group's messages: every column but seq, then ord,
// the message's place in its conversation (see placedCols).
func placedParams(first int) (params, names []string) {
	p := first
	for _, c := range messageColumns {
		if c.name == "seq" {
			continue
		}
		params = append(params, fmt.Sprintf("CAST($%d AS %s[])", p, c.typ))
		names = append(names, c.name)
		p++
	}
	return append(params, fmt.Sprintf("CAST($%d AS BIGINT[])", p)), append(names, "ord")
}

// placedSelect selects a message row from m, a row of placedParams: seq
// is the expression given, every other column m's.
func placedSelect(seq string) string {
	sel := make([]string, len(messageColumns))
	for i, c := range messageColumns {
		sel[i] = "m." + c.name
		if c.name == "seq" {
			sel[i] = seq + " AS seq"
		}
	}
	return strings.Join(sel, ", ")
}

// placedCols are placedParams' values for msgs, ord their places in their
// conversations.
func placedCols(msgs []im.Message, ord []int64) []column {
	var cols []column
	for _, c := range msgCols(msgs) {
		if c.name != "seq" {
			cols = append(cols, c)
		}
	}
	return append(cols, column{"ord", "BIGINT", func(i int) any { return ord[i] }})
}

// sqlReadPositions moves each sender's read position in a conversation to
// its last message in rows (a table expression with conv_id, sender and
// seq), never back.
func sqlReadPositions(rows string) string {
	return `
		INSERT INTO read_positions (conv_id, uid, read_seq)
		SELECT conv_id, sender, MAX(seq) FROM ` + rows + ` WHERE sender <> 0 GROUP BY conv_id, sender
		ON CONFLICT (conv_id, uid) DO UPDATE SET read_seq = excluded.read_seq
		WHERE read_positions.read_seq < excluded.read_seq`
}

// appendOneTrip stores msgs, a group of messages, in sqlOneTrip. It
// returns them with their seqs; an im.ErrConflict error means a message
// was stored before (nothing was stored).
func (s *Store) appendOneTrip(ctx context.Context, msgs []im.Message) ([]im.Message, error) {
	st, ok := s.stmts[s.sql.oneTrip]
	if !ok {
		return nil, fmt.Errorf("one-trip statement not prepared")
	}
	out, _, err := runOneTrip(ctx, st, msgs)
	return out, err
}

// appendOneTripTx is appendMessages on PostgreSQL: msgs stored in tx in
// one statement, re-sent ones skipped and then found, under the
// conversations' locks, for the caller to roll back.
func (s *Store) appendOneTripTx(ctx context.Context, tx *sqlx.Tx, msgs []im.Message) (appended, error) {
	st, err := s.prepared(ctx, tx, s.sql.oneTripTx)
	if err != nil {
		return appended{}, fmt.Errorf("store messages: %w", mapErr(err))
	}
	out, inserted, err := runOneTrip(ctx, st, msgs)
	if err != nil {
		return appended{}, err
	}
	res := appended{msgs: out}
	if inserted < len(msgs) { // some were re-sent
		res.dups, err = s.resent(ctx, tx, msgs, inserted)
	}
	return res, err
}

// oneTripRow is a row of sqlOneTrip's answer: a conversation's new last
// seq, and (inside a transaction) how many messages were inserted.
type oneTripRow struct {
	Conv     string `db:"conv_id"`
	LastSeq  int64  `db:"last_seq"`
	Inserted int    `db:"inserted"`
}

// runOneTrip runs st, a form of sqlOneTrip, for msgs: it returns them with
// their seqs, and how many were inserted.
func runOneTrip(ctx context.Context, st *sqlx.Stmt, msgs []im.Message) ([]im.Message, int, error) {
	byID := map[string]*convRow{}
	var rows []*convRow
	ord := make([]int64, len(msgs))
	for i, m := range msgs {
		r := byID[m.Conv]
		if r == nil {
			c, err := topics.ParseConv(m.Conv)
			if err != nil {
				return nil, 0, fmt.Errorf("%w: %w", im.ErrInvalid, err)
			}
			r = &convRow{id: m.Conv, c: c}
			byID[m.Conv] = r
			rows = append(rows, r)
		}
		r.n++
		r.ts = max(r.ts, m.TS)
		ord[i] = r.n
	}
	slices.SortFunc(rows, func(a, b *convRow) int { return strings.Compare(a.id, b.id) })
	args := arrayArgs(len(rows), convCols(rows))
	args = append(args, arrayArgs(len(msgs), placedCols(msgs, ord))...)
	var last []oneTripRow
	if err := st.SelectContext(ctx, &last, args...); err != nil {
		return nil, 0, fmt.Errorf("store messages: %w", mapErr(err))
	}
	inserted := len(msgs)
	for _, l := range last {
		if r := byID[l.Conv]; r != nil {
			r.firstSeq = l.LastSeq - r.n + 1
		}
		inserted = l.Inserted // the same on every row
	}
	out := make([]im.Message, len(msgs))
	for i, m := range msgs {
		r := byID[m.Conv]
		if r.firstSeq <= 0 {
			return nil, 0, fmt.Errorf("next seq of %s: %w", m.Conv, im.ErrNotFound)
		}
		m.Seq = r.firstSeq + ord[i] - 1
		out[i] = m
	}
	return out, inserted, nil
}
