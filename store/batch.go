package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/imserver/imserver/im"
)

// The appender commits messages in groups. Each AppendMessage call queues
// its message and waits; a worker takes everything queued, stores it in one
// transaction with a handful of multi-row statements, commits once, and
// answers every caller. Nothing waits on purpose: while one group commits,
// the next one queues, so groups grow with the load and a lone message is
// committed at once. Every caller still gets its answer only after its
// message is durably committed, so "stored before acknowledged" holds.
//
// Callers of the domain hold the conversation's in-process lock across an
// append, so one group never holds two messages of one conversation from
// this process, and two groups in flight never touch the same conversation
// row; a group can still meet another server's transaction, and if
// anything in a group fails (a lock conflict, a duplicate raced in by
// another server), its messages are stored one by one instead, each with
// its own answer.

// maxGroup bounds a group: SQL statements have a bounded number of
// parameters, and a huge group would make its first caller wait long.
const maxGroup = 256

type appendReq struct {
	ctx  context.Context
	m    im.Message
	done chan appendRes // buffered: the worker never blocks on it
}

type appendRes struct {
	m   im.Message
	dup bool
	err error
}

type appender struct {
	s       *Store
	queue   chan *appendReq
	quit    chan struct{} // closed by Close: workers finish what is queued and stop
	stopped chan struct{} // closed once every worker has stopped
	known   sync.Map      // conversation ids known to exist (conversations are never deleted)
}

// errStoreClosed answers appends after Close.
var errStoreClosed = errors.New("store is closed")

func newAppender(s *Store, workers int) *appender {
	a := &appender{s: s, queue: make(chan *appendReq, 4096), quit: make(chan struct{}), stopped: make(chan struct{})}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.work()
		}()
	}
	go func() {
		wg.Wait()
		close(a.stopped)
	}()
	return a
}

func (a *appender) append(ctx context.Context, m im.Message) (im.Message, bool, error) {
	req := &appendReq{ctx: ctx, m: m, done: make(chan appendRes, 1)}
	select {
	case a.queue <- req:
	case <-a.quit:
		return im.Message{}, false, errStoreClosed
	case <-ctx.Done():
		return im.Message{}, false, ctx.Err()
	}
	select {
	case r := <-req.done:
		return r.m, r.dup, r.err
	case <-a.stopped: // stopped without taking it
		select {
		case r := <-req.done:
			return r.m, r.dup, r.err
		default:
			return im.Message{}, false, errStoreClosed
		}
	}
}

// close stops the workers once what is queued is stored.
func (a *appender) close() {
	select {
	case <-a.quit:
	default:
		close(a.quit)
	}
	<-a.stopped
}

func (a *appender) work() {
	for {
		var first *appendReq
		select {
		case first = <-a.queue:
		case <-a.quit:
			// Store what was queued before Close, then stop.
			for {
				select {
				case r := <-a.queue:
					a.run(a.gather(r))
				default:
					return
				}
			}
		}
		a.run(a.gather(first))
	}
}

// gather takes first and whatever else is queued, up to maxGroup.
func (a *appender) gather(first *appendReq) []*appendReq {
	group := []*appendReq{first}
	for len(group) < maxGroup {
		select {
		case r := <-a.queue:
			group = append(group, r)
		default:
			return group
		}
	}
	return group
}

// run stores a group and answers its callers.
func (a *appender) run(group []*appendReq) {
	live := group[:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- appendRes{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	// The group's transaction outlives any one caller's deadline: it is
	// everyone's.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(live) > 0 {
		results, dups, err := a.storeGroup(ctx, live)
		if err == nil {
			for i, r := range live {
				r.done <- results[i]
			}
			return
		}
		if len(dups) == 0 {
			break
		}
		// Re-sent messages found: answer them with the stored copy and
		// store the rest without them.
		rest := live[:0]
		for _, r := range live {
			if d, ok := dups[dupKey{r.m.From, r.m.Conv, r.m.CID}]; ok && r.m.CID != "" {
				r.done <- appendRes{m: d, dup: true}
			} else {
				rest = append(rest, r)
			}
		}
		if len(rest) == len(live) {
			break // the duplicates match nobody here: store one by one
		}
		live = rest
	}
	// Something failed: store them one by one, each with its own answer.
	for _, r := range live {
		var res appendRes
		res.err = a.s.inTx(ctx, func(tx *sqlx.Tx) error {
			var err error
			res.m, res.dup, err = a.s.appendTx(ctx, tx, r.m)
			return err
		})
		if res.err != nil {
			res.err = fmt.Errorf("append to %s: %w", r.m.Conv, res.err)
		}
		r.done <- res
	}
}

type dupKey struct {
	from int64
	conv string
	cid  string
}

// errDups rolls back a group that holds re-sent messages.
var errDups = errors.New("group holds duplicates")

// storeGroup stores a group in one transaction. If some messages were
// already stored (same sender, conversation and cid), it stores nothing and
// returns them.
func (a *appender) storeGroup(ctx context.Context, group []*appendReq) ([]appendRes, map[dupKey]im.Message, error) {
	var (
		results = make([]appendRes, len(group))
		dups    map[dupKey]im.Message
		created []string
	)
	err := a.s.inTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if created, err = a.createConversations(ctx, tx, group); err != nil {
			return err
		}
		seqs, err := a.bumpSeqs(ctx, tx, group)
		if err != nil {
			return err
		}
		if dups, err = a.findDups(ctx, tx, group); err != nil {
			return err
		}
		if len(dups) > 0 {
			return errDups
		}
		for i, r := range group {
			m := r.m
			m.Seq = seqs[i]
			results[i] = appendRes{m: m}
		}
		if err := a.insertMessages(ctx, tx, results); err != nil {
			return err
		}
		return a.advanceReaders(ctx, tx, results)
	})
	if err != nil {
		return nil, dups, err
	}
	for _, c := range created {
		a.known.Store(c, struct{}{})
	}
	return results, nil, nil
}

// createConversations inserts the group's conversations not known to
// exist, and returns their ids.
func (a *appender) createConversations(ctx context.Context, tx *sqlx.Tx, group []*appendReq) ([]string, error) {
	var (
		ids  []string
		seen = map[string]bool{}
		vals []string
		args []any
	)
	for _, r := range group {
		conv := r.m.Conv
		if _, ok := a.known.Load(conv); ok || seen[conv] {
			continue
		}
		seen[conv] = true
		row, err := conversationRow(conv, 0, r.m.TS)
		if err != nil {
			return nil, err
		}
		ids = append(ids, conv)
		vals = append(vals, conversationValues)
		args = append(args, row...)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	_, err := tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO conversations (`+conversationColumns+`) VALUES `+strings.Join(vals, ", ")+` ON CONFLICT (conv_id) DO NOTHING`), args...)
	if err != nil {
		return nil, fmt.Errorf("create conversations: %w", mapErr(err))
	}
	return ids, nil
}

// bumpSeqs raises each conversation's last_seq by its number of messages
// in the group, in one statement, and returns each message's seq.
func (a *appender) bumpSeqs(ctx context.Context, tx *sqlx.Tx, group []*appendReq) ([]int64, error) {
	type conv struct {
		n  int64
		ts int64
	}
	convs := map[string]*conv{}
	var order []string
	for _, r := range group {
		c, ok := convs[r.m.Conv]
		if !ok {
			c = &conv{}
			convs[r.m.Conv] = c
			order = append(order, r.m.Conv)
		}
		c.n++
		c.ts = max(c.ts, r.m.TS)
	}
	ns, tss := make([]int64, len(order)), make([]int64, len(order))
	for i, id := range order {
		ns[i], tss[i] = convs[id].n, convs[id].ts
	}
	values, args := a.rowsOf([]string{"TEXT", "BIGINT", "BIGINT"}, []string{"conv_id", "n", "ts"}, []any{pq.Array(order), pq.Array(ns), pq.Array(tss)}, len(order), func(i int) []any { return []any{order[i], ns[i], tss[i]} })
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
		next[l.Conv] = l.LastSeq - convs[l.Conv].n + 1
	}
	seqs := make([]int64, len(group))
	for i, r := range group {
		s, ok := next[r.m.Conv]
		if !ok {
			return nil, fmt.Errorf("next seq of %s: %w", r.m.Conv, im.ErrNotFound)
		}
		seqs[i] = s
		next[r.m.Conv] = s + 1
	}
	return seqs, nil
}

// findDups returns the group's messages already stored under their
// (sender, conversation, cid). It runs after bumpSeqs has locked the
// conversations, so a copy committed by anyone before is seen.
func (a *appender) findDups(ctx context.Context, tx *sqlx.Tx, group []*appendReq) (map[dupKey]im.Message, error) {
	var (
		senders     []int64
		convs, cids []string
	)
	for _, r := range group {
		if r.m.CID != "" {
			senders, convs, cids = append(senders, r.m.From), append(convs, r.m.Conv), append(cids, r.m.CID)
		}
	}
	if len(cids) == 0 {
		return nil, nil
	}
	values, args := a.rowsOf([]string{"BIGINT", "TEXT", "TEXT"}, []string{"sender", "conv_id", "cid"}, []any{pq.Array(senders), pq.Array(convs), pq.Array(cids)}, len(cids), func(i int) []any { return []any{senders[i], convs[i], cids[i]} })
	var rows []messageRow
	if err := tx.SelectContext(ctx, &rows, tx.Rebind(`SELECT `+qualified("m", messageColumns)+` FROM messages m JOIN `+values+`
		ON m.sender = v.sender AND m.conv_id = v.conv_id AND m.cid = v.cid`), args...); err != nil {
		return nil, fmt.Errorf("find re-sent messages: %w", mapErr(err))
	}
	if len(rows) == 0 {
		return nil, nil
	}
	dups := make(map[dupKey]im.Message, len(rows))
	for _, row := range rows {
		m := row.message()
		dups[dupKey{m.From, m.Conv, m.CID}] = m
	}
	return dups, nil
}

func (a *appender) insertMessages(ctx context.Context, tx *sqlx.Tx, results []appendRes) error {
	n := len(results)
	var (
		ids, convs, kinds, bodies = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		seqs, senders, tss        = make([]int64, n), make([]int64, n), make([]int64, n)
		cids                      = make([]sql.NullString, n)
		autos                     = make([]bool, n)
		sessions, agents          = make([]sql.NullInt64, n), make([]sql.NullInt64, n)
	)
	for i, r := range results {
		m := r.m
		ids[i], convs[i], seqs[i], senders[i], kinds[i], bodies[i] = m.ID, m.Conv, m.Seq, m.From, m.Type, string(m.Body)
		cids[i], autos[i], sessions[i], agents[i], tss[i] = nullString(m.CID), m.Auto, nullInt(m.Session), nullInt(m.Agent), m.TS
	}
	columns := strings.Split(strings.ReplaceAll(messageColumns, " ", ""), ",")
	types := []string{"TEXT", "TEXT", "BIGINT", "BIGINT", "TEXT", "TEXT", "TEXT", "BOOLEAN", "BIGINT", "BIGINT", "BIGINT"}
	arrays := []any{pq.Array(ids), pq.Array(convs), pq.Array(seqs), pq.Array(senders), pq.Array(kinds), pq.Array(bodies),
		pq.Array(cids), pq.Array(autos), pq.Array(sessions), pq.Array(agents), pq.Array(tss)}
	values, args := a.rowsOf(types, columns, arrays, n, func(i int) []any {
		return []any{ids[i], convs[i], seqs[i], senders[i], kinds[i], bodies[i], cids[i], autos[i], sessions[i], agents[i], tss[i]}
	})
	_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO messages (`+messageColumns+`) SELECT * FROM `+values), args...)
	if err != nil {
		return fmt.Errorf("insert messages: %w", mapErr(err))
	}
	return nil
}

// advanceReaders moves each sender's read position to its last message.
func (a *appender) advanceReaders(ctx context.Context, tx *sqlx.Tx, results []appendRes) error {
	type key struct {
		conv string
		uid  int64
	}
	top := map[key]int64{}
	var order []key
	for _, r := range results {
		if r.m.From == 0 {
			continue
		}
		k := key{r.m.Conv, r.m.From}
		if _, ok := top[k]; !ok {
			order = append(order, k)
		}
		top[k] = max(top[k], r.m.Seq)
	}
	if len(order) == 0 {
		return nil
	}
	convs, uids, seqs := make([]string, len(order)), make([]int64, len(order)), make([]int64, len(order))
	for i, k := range order {
		convs[i], uids[i], seqs[i] = k.conv, k.uid, top[k]
	}
	values, args := a.rowsOf([]string{"TEXT", "BIGINT", "BIGINT"}, []string{"conv_id", "uid", "read_seq"}, []any{pq.Array(convs), pq.Array(uids), pq.Array(seqs)}, len(order), func(i int) []any { return []any{convs[i], uids[i], seqs[i]} })
	_, err := tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO read_positions (conv_id, uid, read_seq) SELECT * FROM `+values+` WHERE true
		ON CONFLICT (conv_id, uid) DO UPDATE SET read_seq = excluded.read_seq
		WHERE read_positions.read_seq < excluded.read_seq`), args...)
	if err != nil {
		return fmt.Errorf("advance read positions: %w", mapErr(err))
	}
	return nil
}

// rowsOf returns a table expression v of n rows with the given column
// types and names, and its arguments. On PostgreSQL it is one unnest of a typed array per
// column: a fixed number of parameters, so the statement is planned as
// quickly for 200 rows as for one (a VALUES list or a UNION ALL of 200
// rows takes milliseconds to plan). On SQLite, where planning is cheap and
// arrays do not exist, it is a UNION ALL of one SELECT per row. arrays
// hold the columns (pq.Array), row(i) gives row i's values.
func (a *appender) rowsOf(types, columns []string, arrays []any, n int, row func(i int) []any) (string, []any) {
	if a.s.engine == Postgres {
		params := make([]string, len(types))
		for i, t := range types {
			params[i] = "CAST(? AS " + t + "[])"
		}
		return "unnest(" + strings.Join(params, ", ") + ") AS v(" + strings.Join(columns, ", ") + ")", arrays
	}
	selects := make([]string, n)
	args := make([]any, 0, n*len(types))
	for i := range n {
		cols := make([]string, len(types))
		for j, t := range types {
			cols[j] = "CAST(? AS " + t + ") AS " + columns[j]
		}
		selects[i] = "SELECT " + strings.Join(cols, ", ")
		args = append(args, row(i)...)
	}
	return "(" + strings.Join(selects, " UNION ALL ") + ") AS v", args
}

// qualified prefixes each of a comma-separated list of columns with alias.
func qualified(alias, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}
