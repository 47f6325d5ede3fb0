package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
)

// The one way messages are stored: appendMessages, in a caller's
// transaction, for one message or a group of them (batch.go). A message
// gets its conversation's next seq (the conversation is created on its
// first message), and its sender's read position moves to it, in a fixed
// number of statements whatever the group's size:
//
//	INSERT INTO conversations … ON CONFLICT DO NOTHING   -- only conversations not known to exist
//	UPDATE conversations SET last_seq = last_seq + n … RETURNING   -- the locks, first
//	SELECT … FROM messages JOIN (sender, conv, cid) …   -- re-sent cids, under the locks
//	INSERT INTO messages …
//	INSERT INTO read_positions … ON CONFLICT DO UPDATE …

// messageColumns declares the messages table's columns once: the name, the
// SQL type (for the typed rows of a group) and the value of a message.
// messageRow's db tags and scans follow the same names.
var messageColumns = []messageColumn{
	{"msg_id", "TEXT", func(m *im.Message) any { return m.ID }},
	{"conv_id", "TEXT", func(m *im.Message) any { return m.Conv }},
	{"seq", "BIGINT", func(m *im.Message) any { return m.Seq }},
	{"sender", "BIGINT", func(m *im.Message) any { return m.From }},
	{"type", "TEXT", func(m *im.Message) any { return m.Type }},
	{"body", "TEXT", func(m *im.Message) any { return string(m.Body) }},
	{"cid", "TEXT", func(m *im.Message) any { return nullString(m.CID) }},
	{"auto", "BOOLEAN", func(m *im.Message) any { return m.Auto }},
	{"session_id", "BIGINT", func(m *im.Message) any { return nullInt(m.Ticket) }},
	{"agent", "BIGINT", func(m *im.Message) any { return nullInt(m.Agent) }},
	{"created_at", "BIGINT", func(m *im.Message) any { return m.TS }},
}

type messageColumn struct {
	name, typ string
	value     func(m *im.Message) any
}

// messageSelect lists the columns for SELECT, prefixed with alias and a
// dot when alias is not "".
func messageSelect(alias string) string {
	names := make([]string, len(messageColumns))
	for i, c := range messageColumns {
		names[i] = c.name
		if alias != "" {
			names[i] = alias + "." + c.name
		}
	}
	return strings.Join(names, ", ")
}

// messageRow is a row of messages as SELECT messageSelect(…) reads it.
type messageRow struct {
	ID        string         `db:"msg_id"`
	Conv      string         `db:"conv_id"`
	Seq       int64          `db:"seq"`
	Sender    int64          `db:"sender"`
	Type      string         `db:"type"`
	Body      string         `db:"body"`
	CID       sql.NullString `db:"cid"`
	Auto      bool           `db:"auto"`
	Ticket    sql.NullInt64  `db:"session_id"`
	Agent     sql.NullInt64  `db:"agent"`
	CreatedAt int64          `db:"created_at"`
}

func (r messageRow) message() im.Message {
	return im.Message{
		ID: r.ID, Conv: r.Conv, Seq: r.Seq, From: r.Sender, Type: r.Type, Body: json.RawMessage(r.Body),
		CID: r.CID.String, TS: r.CreatedAt, Auto: r.Auto, Ticket: r.Ticket.Int64, Agent: r.Agent.Int64,
	}
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
func nullInt(n int64) sql.NullInt64      { return sql.NullInt64{Int64: n, Valid: n != 0} }

// dupKey identifies a re-sent message: one per sender, conversation and
// cid.
type dupKey struct {
	from int64
	conv string
	cid  string
}

func keyOf(m im.Message) dupKey { return dupKey{m.From, m.Conv, m.CID} }

// appended is what appendMessages did.
type appended struct {
	msgs    []im.Message          // stored, in the order given, with their seqs
	dups    map[dupKey]im.Message // messages found stored before: nothing was stored, roll back
	created []string              // conversations created: known once the transaction commits
}

// appendMessages stores msgs in tx. Messages of one conversation get
// consecutive seqs in the order given. If any was stored before (same
// sender, conversation and cid), it stores nothing and returns those in
// dups: the caller must roll back, the seqs having been taken.
func (s *Store) appendMessages(ctx context.Context, tx *sqlx.Tx, msgs []im.Message) (appended, error) {
	var res appended
	var err error
	if res.created, err = s.createConversations(ctx, tx, msgs); err != nil {
		return res, err
	}
	seqs, err := s.bumpSeqs(ctx, tx, msgs)
	if err != nil {
		return res, err
	}
	if res.dups, err = s.findDups(ctx, tx, msgs); err != nil || len(res.dups) > 0 {
		return res, err
	}
	res.msgs = make([]im.Message, len(msgs))
	for i, m := range msgs {
		m.Seq = seqs[i]
		res.msgs[i] = m
	}
	if err := s.insertMessages(ctx, tx, res.msgs); err != nil {
		return res, err
	}
	return res, s.advanceReaders(ctx, tx, res.msgs)
}

// appendTx stores one message in tx, as appendMessages does. dup reports
// a re-sent message, returned as first stored: the caller must roll back.
func (s *Store) appendTx(ctx context.Context, tx *sqlx.Tx, m im.Message) (_ im.Message, dup bool, created []string, _ error) {
	res, err := s.appendMessages(ctx, tx, []im.Message{m})
	if err != nil {
		return im.Message{}, false, nil, err
	}
	if d, ok := res.dups[keyOf(m)]; ok {
		return d, true, nil, nil
	}
	return res.msgs[0], false, res.created, nil
}

// conversationColumns are a conversation row's columns; conversationRow
// gives their values, the participant columns derived from the id.
const conversationColumns = `conv_id, kind, user_a, user_b, room_id, shop_id, customer, last_seq, updated_at`

func conversationRow(conv string, lastSeq, now int64) ([]any, error) {
	c, err := topics.ParseConv(conv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", im.ErrInvalid, err)
	}
	return []any{conv, string(c.Kind), nullInt(c.A), nullInt(c.B), nullInt(c.Room), nullInt(c.Shop), nullInt(c.Customer), lastSeq, now}, nil
}

// createConversations inserts the conversations of msgs not known to
// exist, and returns their ids.
func (s *Store) createConversations(ctx context.Context, tx *sqlx.Tx, msgs []im.Message) ([]string, error) {
	var (
		ids  []string
		rows [][]any
	)
	for _, m := range msgs {
		if s.knownConvs.has(m.Conv) || containsString(ids, m.Conv) {
			continue
		}
		row, err := conversationRow(m.Conv, 0, m.TS)
		if err != nil {
			return nil, err
		}
		ids, rows = append(ids, m.Conv), append(rows, row)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	placeholders := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(rows[0])), ", ") + ")"
	vals := make([]string, len(rows))
	var args []any
	for i, row := range rows {
		vals[i] = placeholders
		args = append(args, row...)
	}
	_, err := tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO conversations (`+conversationColumns+`) VALUES `+strings.Join(vals, ", ")+` ON CONFLICT (conv_id) DO NOTHING`), args...)
	if err != nil {
		return nil, fmt.Errorf("create conversations: %w", mapErr(err))
	}
	return ids, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// bumpSeqs raises each conversation's last_seq by its number of messages,
// in one statement, and returns each message's seq.
func (s *Store) bumpSeqs(ctx context.Context, tx *sqlx.Tx, msgs []im.Message) ([]int64, error) {
	var (
		order []string
		n     = map[string]int64{}
		ts    = map[string]int64{}
	)
	for _, m := range msgs {
		if _, ok := n[m.Conv]; !ok {
			order = append(order, m.Conv)
		}
		n[m.Conv]++
		ts[m.Conv] = max(ts[m.Conv], m.TS)
	}
	values, args := s.rowsOf(len(order),
		column{"conv_id", "TEXT", func(i int) any { return order[i] }},
		column{"n", "BIGINT", func(i int) any { return n[order[i]] }},
		column{"ts", "BIGINT", func(i int) any { return ts[order[i]] }})
	var last []struct {
		Conv    string `db:"conv_id"`
		LastSeq int64  `db:"last_seq"`
	}
	err := tx.SelectContext(ctx, &last, tx.Rebind(`
		UPDATE conversations SET last_seq = conversations.last_seq + v.n, updated_at = v.ts
		FROM `+values+`
		WHERE conversations.conv_id = v.conv_id
		RETURNING conversations.conv_id, conversations.last_seq`), args...)
	if err != nil {
		return nil, fmt.Errorf("next seqs: %w", mapErr(err))
	}
	next := make(map[string]int64, len(last))
	for _, l := range last {
		next[l.Conv] = l.LastSeq - n[l.Conv] + 1
	}
	seqs := make([]int64, len(msgs))
	for i, m := range msgs {
		seq, ok := next[m.Conv]
		if !ok {
			return nil, fmt.Errorf("next seq of %s: %w", m.Conv, im.ErrNotFound)
		}
		seqs[i] = seq
		next[m.Conv] = seq + 1
	}
	return seqs, nil
}

// findDups returns the messages of msgs already stored under their
// (sender, conversation, cid). It runs after bumpSeqs has locked the
// conversations, so a copy committed by anyone before is seen.
func (s *Store) findDups(ctx context.Context, tx *sqlx.Tx, msgs []im.Message) (map[dupKey]im.Message, error) {
	var withCID []*im.Message
	for i := range msgs {
		if msgs[i].CID != "" {
			withCID = append(withCID, &msgs[i])
		}
	}
	if len(withCID) == 0 {
		return nil, nil
	}
	values, args := s.rowsOf(len(withCID),
		column{"sender", "BIGINT", func(i int) any { return withCID[i].From }},
		column{"conv_id", "TEXT", func(i int) any { return withCID[i].Conv }},
		column{"cid", "TEXT", func(i int) any { return withCID[i].CID }})
	var rows []messageRow
	if err := tx.SelectContext(ctx, &rows, tx.Rebind(`SELECT `+messageSelect("m")+` FROM messages m JOIN `+values+`
		ON m.sender = v.sender AND m.conv_id = v.conv_id AND m.cid = v.cid`), args...); err != nil {
		return nil, fmt.Errorf("find re-sent messages: %w", mapErr(err))
	}
	if len(rows) == 0 {
		return nil, nil
	}
	dups := make(map[dupKey]im.Message, len(rows))
	for _, row := range rows {
		m := row.message()
		dups[keyOf(m)] = m
	}
	return dups, nil
}

func (s *Store) insertMessages(ctx context.Context, tx *sqlx.Tx, msgs []im.Message) error {
	cols := make([]column, len(messageColumns))
	for j, c := range messageColumns {
		cols[j] = column{c.name, c.typ, func(i int) any { return c.value(&msgs[i]) }}
	}
	values, args := s.rowsOf(len(msgs), cols...)
	names := messageSelect("")
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO messages (`+names+`) SELECT `+messageSelect("v")+` FROM `+values), args...)
	if err != nil {
		return fmt.Errorf("insert messages: %w", mapErr(err))
	}
	return nil
}

// advanceReaders moves each sender's read position to its last message.
func (s *Store) advanceReaders(ctx context.Context, tx *sqlx.Tx, msgs []im.Message) error {
	type reader struct {
		conv string
		uid  int64
	}
	top := map[reader]int64{}
	var order []reader
	for _, m := range msgs {
		if m.From == 0 {
			continue
		}
		k := reader{m.Conv, m.From}
		if _, ok := top[k]; !ok {
			order = append(order, k)
		}
		top[k] = max(top[k], m.Seq)
	}
	if len(order) == 0 {
		return nil
	}
	values, args := s.rowsOf(len(order),
		column{"conv_id", "TEXT", func(i int) any { return order[i].conv }},
		column{"uid", "BIGINT", func(i int) any { return order[i].uid }},
		column{"read_seq", "BIGINT", func(i int) any { return top[order[i]] }})
	_, err := tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO read_positions (conv_id, uid, read_seq) SELECT v.conv_id, v.uid, v.read_seq FROM `+values+` WHERE true
		ON CONFLICT (conv_id, uid) DO UPDATE SET read_seq = excluded.read_seq
		WHERE read_positions.read_seq < excluded.read_seq`), args...)
	if err != nil {
		return fmt.Errorf("advance read positions: %w", mapErr(err))
	}
	return nil
}
