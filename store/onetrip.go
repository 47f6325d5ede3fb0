package store

import (
	"context"
	"fmt"
	"slices"
	"strings"

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

// sqlOneTrip is the statement. $1–$9 are the conversations (as bumpSeqs
// has them, sorted by id: the locks are taken in that order), then the
// messages' columns and their place in their conversation (ord).
func sqlOneTrip() string {
	convNames := []string{"conv_id", "kind", "user_a", "user_b", "room_id", "shop_id", "customer", "last_seq", "updated_at"}
	convTypes := []string{"TEXT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT"}
	var convParams []string
	p := 1
	for _, t := range convTypes {
		convParams = append(convParams, fmt.Sprintf("CAST($%d AS %s[])", p, t))
		p++
	}
	var msgParams, msgNames, sel []string
	for _, c := range messageColumns {
		msgNames = append(msgNames, c.name)
		if c.name == "seq" {
			sel = append(sel, "b.last_seq - c.n + m.ord AS seq")
			continue
		}
		sel = append(sel, "m."+c.name)
	}
	for _, c := range messageColumns {
		if c.name == "seq" {
			continue
		}
		msgParams = append(msgParams, fmt.Sprintf("CAST($%d AS %s[])", p, c.typ))
		p++
	}
	msgParams = append(msgParams, fmt.Sprintf("CAST($%d AS BIGINT[])", p))
	var mcols []string
	for _, n := range msgNames {
		if n != "seq" {
			mcols = append(mcols, n)
		}
	}
	mcols = append(mcols, "ord")
	return `
		WITH bumped AS (
			INSERT INTO conversations (` + strings.Join(convNames, ", ") + `)
			SELECT * FROM unnest(` + strings.Join(convParams, ", ") + `) AS v(` + strings.Join(convNames, ", ") + `) WHERE true
			ON CONFLICT (conv_id) DO UPDATE SET last_seq = conversations.last_seq + excluded.last_seq, updated_at = excluded.updated_at
			RETURNING conv_id, last_seq
		),
		numbered AS (
			SELECT ` + strings.Join(sel, ", ") + `
			FROM unnest(` + strings.Join(msgParams, ", ") + `) AS m(` + strings.Join(mcols, ", ") + `)
			JOIN bumped b ON b.conv_id = m.conv_id
			JOIN unnest(CAST($1 AS TEXT[]), CAST($8 AS BIGINT[])) AS c(conv_id, n) ON c.conv_id = m.conv_id
		),
		ins AS (
			INSERT INTO messages (` + strings.Join(msgNames, ", ") + `) SELECT * FROM numbered
		),
		rp AS (
			INSERT INTO read_positions (conv_id, uid, read_seq)
			SELECT conv_id, sender, MAX(seq) FROM numbered WHERE sender <> 0 GROUP BY conv_id, sender
			ON CONFLICT (conv_id, uid) DO UPDATE SET read_seq = excluded.read_seq
			WHERE read_positions.read_seq < excluded.read_seq
		)
		SELECT conv_id, last_seq FROM bumped`
}

// appendOneTrip stores msgs, a group of messages, in sqlOneTrip. It
// returns them with their seqs; an im.ErrConflict error means a message
// was stored before (nothing was stored).
func (s *Store) appendOneTrip(ctx context.Context, msgs []im.Message) ([]im.Message, error) {
	byID := map[string]*convRow{}
	var rows []*convRow
	ord := make([]int64, len(msgs))
	for i, m := range msgs {
		r := byID[m.Conv]
		if r == nil {
			c, err := topics.ParseConv(m.Conv)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", im.ErrInvalid, err)
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
	var cols []column
	for _, c := range msgCols(msgs) {
		if c.name != "seq" {
			cols = append(cols, c)
		}
	}
	cols = append(cols, column{"ord", "BIGINT", func(i int) any { return ord[i] }})
	args = append(args, arrayArgs(len(msgs), cols)...)
	st, ok := s.stmts[s.sql.oneTrip]
	if !ok {
		return nil, fmt.Errorf("one-trip statement not prepared")
	}
	var last []lastSeq
	if err := st.SelectContext(ctx, &last, args...); err != nil {
		return nil, fmt.Errorf("store messages: %w", mapErr(err))
	}
	for _, l := range last {
		if r := byID[l.Conv]; r != nil {
			r.firstSeq = l.LastSeq - r.n + 1
		}
	}
	out := make([]im.Message, len(msgs))
	for i, m := range msgs {
		r := byID[m.Conv]
		if r.firstSeq <= 0 {
			return nil, fmt.Errorf("next seq of %s: %w", m.Conv, im.ErrNotFound)
		}
		m.Seq = r.firstSeq + ord[i] - 1
		out[i] = m
	}
	return out, nil
}
