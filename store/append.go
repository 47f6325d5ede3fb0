package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
)

// The one way messages are stored: appendMessages, in a caller's
// transaction, for one message or a group of them (batch.go). A message
// gets its conversation's next seq (the conversation is created on its
// first message), and its sender's read position moves to it, in three
// statements whatever the group's size, each of a fixed shape and
// prepared once:
//
//	INSERT INTO conversations … ON CONFLICT DO UPDATE SET last_seq = last_seq + n RETURNING   -- the locks, first
//	INSERT INTO messages … ON CONFLICT (sender, conv_id, cid) DO NOTHING                     -- fewer rows: re-sent cids
//	INSERT INTO read_positions … ON CONFLICT DO UPDATE …
//
// On SQLite each runs once per row. On PostgreSQL the rows come from one
// typed array per column, and the three are one statement of
// data-modifying CTEs (onetrip.go): one round trip per group. Either way
// a statement's text, and so its plan, never depends on the group's size
// (see rowsExpr).

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
	msgs []im.Message          // stored, in the order given, with their seqs
	dups map[dupKey]im.Message // messages found stored before: nothing was stored, roll back
}

// appendMessages stores msgs in tx. Messages of one conversation get
// consecutive seqs in the order given. If any was stored before (same
// sender, conversation and cid), it returns those in dups: the caller
// must roll back, the seqs having been taken.
func (s *Store) appendMessages(ctx context.Context, tx *sqlx.Tx, msgs []im.Message) (appended, error) {
	if s.sql.oneTripTx != "" {
		return s.appendOneTripTx(ctx, tx, msgs)
	}
	var res appended
	seqs, err := s.bumpSeqs(ctx, tx, msgs)
	if err != nil {
		return res, err
	}
	res.msgs = make([]im.Message, len(msgs))
	for i, m := range msgs {
		m.Seq = seqs[i]
		res.msgs[i] = m
	}
	inserted, err := s.insertMessages(ctx, tx, res.msgs)
	if err != nil {
		return res, err
	}
	if inserted < len(msgs) { // some were re-sent: find them, under the locks
		res.dups, err = s.resent(ctx, tx, msgs, inserted)
		return res, err
	}
	return res, s.advanceReaders(ctx, tx, res.msgs)
}

// appendTx stores one message in tx, as appendMessages does. dup reports
// a re-sent message, returned as first stored: the caller must roll back.
func (s *Store) appendTx(ctx context.Context, tx *sqlx.Tx, m im.Message) (_ im.Message, dup bool, _ error) {
	res, err := s.appendMessages(ctx, tx, []im.Message{m})
	if err != nil {
		return im.Message{}, false, err
	}
	if d, ok := res.dups[keyOf(m)]; ok && d.ID != m.ID {
		return d, true, nil
	}
	return res.msgs[0], false, nil
}

// conversationColumns are a conversation row's columns.
const conversationColumns = `conv_id, kind, user_a, user_b, room_id, shop_id, customer, last_seq, updated_at`

// The append path's statements on SQLite, each of one text whatever the
// number of rows, prepared at Open. SQLite runs each once per row: plain
// VALUES and no RETURNING (SQLite gathers RETURNING rows in a temporary
// table, opened at every run).
const sqlBumpSeqs = `UPDATE conversations SET last_seq = last_seq + ?, updated_at = ? WHERE conv_id = ?`

// SQLite's statements for a conversation's first message, and for reading
// its last seq after bumpSeqs' UPDATE.
const (
	sqlCreateConversation = `INSERT INTO conversations (` + conversationColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlLastSeq            = `SELECT last_seq FROM conversations WHERE conv_id = ?`
)

// insertFrom is what an INSERT takes its rows from: the typed rows of
// rowsExpr on PostgreSQL, one row of parameters on SQLite.
func (s *Store) insertFrom(cols []column) string {
	if s.engine != Postgres {
		return `VALUES (` + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + `)`
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = "v." + c.name
	}
	return `SELECT ` + strings.Join(names, ", ") + ` FROM ` + s.rowsExpr(cols) + ` WHERE true`
}

func (s *Store) sqlInsertMessages() string {
	return `
		INSERT INTO messages (` + messageSelect("") + `) ` + s.insertFrom(msgCols(nil)) + `
		ON CONFLICT (sender, conv_id, cid) WHERE cid IS NOT NULL DO NOTHING`
}

func (s *Store) sqlFindDups() string {
	return `SELECT ` + messageSelect("m") + ` FROM messages m JOIN ` + s.rowsExpr(dupCols(nil)) + `
		ON m.sender = v.sender AND m.conv_id = v.conv_id AND m.cid = v.cid`
}

func (s *Store) sqlAdvanceReaders() string {
	return `
		INSERT INTO read_positions (conv_id, uid, read_seq) ` + s.insertFrom(readerCols(nil, nil)) + `
		ON CONFLICT (conv_id, uid) DO UPDATE SET read_seq = excluded.read_seq
		WHERE read_positions.read_seq < excluded.read_seq`
}

// appendSQL holds the append path's statements, built once for the
// store's engine.
type appendSQL struct {
	insertMessages, findDups, advanceReaders string // SQLite, with sqlBumpSeqs
	oneTrip, oneTripTx                       string // PostgreSQL: a group in one statement (onetrip.go)
}

func (s *Store) buildAppendSQL() appendSQL {
	q := appendSQL{findDups: s.sqlFindDups()}
	if s.engine == Postgres {
		q.oneTrip, q.oneTripTx = sqlOneTrip(false), sqlOneTrip(true)
	} else {
		q.insertMessages, q.advanceReaders = s.sqlInsertMessages(), s.sqlAdvanceReaders()
	}
	return q
}

func (q appendSQL) all() []string {
	if q.oneTrip != "" {
		return []string{q.oneTrip, q.oneTripTx, q.findDups, sqlAppendToOpen}
	}
	return []string{sqlBumpSeqs, q.insertMessages, q.findDups, q.advanceReaders, sqlCreateConversation, sqlLastSeq}
}

func convCols(rows []*convRow) []column {
	return []column{
		{"conv_id", "TEXT", func(i int) any { return rows[i].id }},
		{"kind", "TEXT", func(i int) any { return string(rows[i].c.Kind) }},
		{"user_a", "BIGINT", func(i int) any { return nullInt(rows[i].c.A) }},
		{"user_b", "BIGINT", func(i int) any { return nullInt(rows[i].c.B) }},
		{"room_id", "BIGINT", func(i int) any { return nullInt(rows[i].c.Room) }},
		{"shop_id", "BIGINT", func(i int) any { return nullInt(rows[i].c.Shop) }},
		{"customer", "BIGINT", func(i int) any { return nullInt(rows[i].c.Customer) }},
		{"last_seq", "BIGINT", func(i int) any { return rows[i].n }},
		{"updated_at", "BIGINT", func(i int) any { return rows[i].ts }},
	}
}

func msgCols(msgs []im.Message) []column {
	cols := make([]column, len(messageColumns))
	for j, c := range messageColumns {
		cols[j] = column{c.name, c.typ, func(i int) any { return c.value(&msgs[i]) }}
	}
	return cols
}

func dupCols(msgs []*im.Message) []column {
	return []column{
		{"sender", "BIGINT", func(i int) any { return msgs[i].From }},
		{"conv_id", "TEXT", func(i int) any { return msgs[i].Conv }},
		{"cid", "TEXT", func(i int) any { return msgs[i].CID }},
	}
}

// reader is a sender's read position in a conversation.
type reader struct {
	conv string
	uid  int64
}

func readerCols(order []reader, top map[reader]int64) []column {
	return []column{
		{"conv_id", "TEXT", func(i int) any { return order[i].conv }},
		{"uid", "BIGINT", func(i int) any { return order[i].uid }},
		{"read_seq", "BIGINT", func(i int) any { return top[order[i]] }},
	}
}

// convRow is a conversation as bumpSeqs upserts it: n is how many messages
// of the group are its.
type convRow struct {
	id       string
	c        topics.Conv
	n, ts    int64
	firstSeq int64
}

// lastSeq is a conversation's last seq.
type lastSeq struct {
	Conv    string `db:"conv_id"`
	LastSeq int64  `db:"last_seq"`
}

// bumpSeqs (SQLite) raises each conversation's last_seq by its number of
// messages, creating the conversations not there yet, and returns
// each message's seq. Conversations are locked in the order of their ids,
// so two groups never wait for each other crosswise.
func (s *Store) bumpSeqs(ctx context.Context, tx *sqlx.Tx, msgs []im.Message) ([]int64, error) {
	byID := map[string]*convRow{}
	var rows []*convRow
	for _, m := range msgs {
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
	}
	slices.SortFunc(rows, func(a, b *convRow) int { return strings.Compare(a.id, b.id) })
	last, err := s.bumpSeqsSQLite(ctx, tx, rows)
	if err != nil {
		return nil, fmt.Errorf("next seqs: %w", mapErr(err))
	}
	for _, l := range last {
		if r := byID[l.Conv]; r != nil {
			r.firstSeq = l.LastSeq - r.n + 1
		}
	}
	seqs := make([]int64, len(msgs))
	for i, m := range msgs {
		r := byID[m.Conv]
		if r.firstSeq <= 0 {
			return nil, fmt.Errorf("next seq of %s: %w", m.Conv, im.ErrNotFound)
		}
		seqs[i] = r.firstSeq
		r.firstSeq++
	}
	return seqs, nil
}

// bumpSeqsSQLite is bumpSeqs' statement on SQLite, one conversation at a
// time: raise its last seq, or create it.
func (s *Store) bumpSeqsSQLite(ctx context.Context, tx *sqlx.Tx, rows []*convRow) ([]lastSeq, error) {
	update, err := s.prepared(ctx, tx, sqlBumpSeqs)
	if err != nil {
		return nil, err
	}
	out := make([]lastSeq, len(rows))
	for i, r := range rows {
		out[i].Conv = r.id
		res, err := update.ExecContext(ctx, r.n, r.ts, r.id)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 { // its first message
			cols := convCols(rows)
			if _, err := execRowsAt(ctx, s, tx, sqlCreateConversation, i, cols); err != nil {
				return nil, err
			}
			out[i].LastSeq = r.n
			continue
		}
		st, err := s.prepared(ctx, tx, sqlLastSeq)
		if err != nil {
			return nil, err
		}
		if err := st.GetContext(ctx, &out[i].LastSeq, r.id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// insertMessages inserts msgs, skipping those already stored under their
// (sender, conversation, cid), and returns how many it inserted.
func (s *Store) insertMessages(ctx context.Context, tx *sqlx.Tx, msgs []im.Message) (int, error) {
	n, err := execRows(ctx, s, tx, s.sql.insertMessages, len(msgs), msgCols(msgs))
	if err != nil {
		return 0, fmt.Errorf("insert messages: %w", mapErr(err))
	}
	return int(n), nil
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
	rows, err := selectRows[messageRow](ctx, s, tx, s.sql.findDups, len(withCID), dupCols(withCID))
	if err != nil {
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

// resent finds the messages of msgs stored before, once only inserted of
// them were: some must be.
func (s *Store) resent(ctx context.Context, tx *sqlx.Tx, msgs []im.Message, inserted int) (map[dupKey]im.Message, error) {
	dups, err := s.findDups(ctx, tx, msgs)
	if err == nil && len(dups) == 0 {
		err = fmt.Errorf("insert messages: %d of %d stored, and no copy found", inserted, len(msgs))
	}
	return dups, err
}

// advanceReaders moves each sender's read position to its last message.
func (s *Store) advanceReaders(ctx context.Context, tx *sqlx.Tx, msgs []im.Message) error {
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
	if _, err := execRows(ctx, s, tx, s.sql.advanceReaders, len(order), readerCols(order, top)); err != nil {
		return fmt.Errorf("advance read positions: %w", mapErr(err))
	}
	return nil
}
