package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
)

// The write pipeline. Every message, and every customer-service
// transaction, is a write queued here; one worker takes everything queued,
// runs it in one transaction, commits once, and hands the answers to a
// second goroutine, which calls each write's done in the order the writes
// were queued, while the worker commits the next group. Nothing waits on
// purpose: while one group commits, the next one queues, so groups grow
// with the load and a lone write is committed at once.
//
// Every done runs after its write is durably committed, so "stored before
// acknowledged" holds; and since groups commit one after the other and
// their answers come in queue order, deliveries made from done reach
// subscribers in seq order without any lock.
//
// In a group, consecutive messages are stored together by appendMessages,
// and on PostgreSQL consecutive customer messages bound for open tickets
// (SupportAppend) by appendToOpen; other transaction functions (jobs) run
// one after the other, without savepoints at first. A job that fails or
// rolls back (a re-sent message, say) undoes the whole group, which then
// runs again with each job in a savepoint of its own, so that its rollback
// undoes only its own work. Read-only jobs commit. If the group fails (a
// lock conflict, a duplicate raced in by another server sharing the
// database), its writes run again one by one, each with its own answer.

// maxGroup bounds a group: a huge group would make its first write wait
// long.
const maxGroup = 512

// appendReq is a write waiting its turn: a message to store (done is
// called with it stored) or a job to run (after is called with its
// result).
type appendReq struct {
	m     im.Message
	done  func(m im.Message, dup bool, err error)
	job   func(ctx context.Context, tx *sqlx.Tx) (im.TxEnd, error)
	after func(err error)

	// A customer's message (SupportAppend): where it most likely goes,
	// and its full path. job tries one then the other; on PostgreSQL
	// runOpen batches them.
	open     func() (im.OpenAppend, bool)
	fallback func(ctx context.Context, tx *sqlx.Tx) (im.TxEnd, error)
}

func (r *appendReq) isJob() bool { return r.job != nil }

// answered is a stored group, with each write's answer.
type answered struct {
	reqs []*appendReq
	res  []appendRes
}

type appendRes struct {
	m   im.Message
	dup bool
	err error
}

func (r *appendReq) answer(res appendRes) {
	if r.isJob() {
		if r.after != nil {
			r.after(res.err)
		}
		return
	}
	r.done(res.m, res.dup, res.err)
}

type appender struct {
	s       *Store
	mu      sync.RWMutex // held for reading while queueing, for writing by close
	closed  bool
	queue   chan *appendReq
	answers chan answered
	quit    chan struct{} // closed by close: the worker stores what is queued and stops
	stopped chan struct{} // closed once every answer is given
}

// errStoreClosed answers writes queued after Close.
var errStoreClosed = errors.New("store is closed")

func newAppender(s *Store) *appender {
	a := &appender{s: s, queue: make(chan *appendReq, 4*maxGroup), answers: make(chan answered, 4),
		quit: make(chan struct{}), stopped: make(chan struct{})}
	go a.work()
	go a.answer()
	return a
}

// push queues r. It blocks while the queue is full: the caller is slowed
// down to what the database takes.
func (a *appender) push(r *appendReq) {
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		r.answer(appendRes{err: errStoreClosed})
		return
	}
	a.queue <- r // the worker runs until close, which waits for us
	a.mu.RUnlock()
}

// append queues m; done is called once it is stored (or failed), on the
// appender's answering goroutine: it must not block for long.
func (a *appender) append(m im.Message, done func(im.Message, bool, error)) {
	a.push(&appendReq{m: m, done: done})
}

// appendWait is append for a caller that waits for the answer.
func (a *appender) appendWait(ctx context.Context, m im.Message) (im.Message, bool, error) {
	ch := make(chan appendRes, 1)
	a.append(m, func(m im.Message, dup bool, err error) { ch <- appendRes{m, dup, err} })
	select {
	case r := <-ch:
		return r.m, r.dup, r.err
	case <-ctx.Done():
		return im.Message{}, false, ctx.Err()
	}
}

// runJob queues fn, to run in a transaction of the pipeline (committed
// unless it fails or returns Rollback); after, if not nil, is called with
// its error on the answering goroutine, in queue order.
func (a *appender) runJob(fn func(ctx context.Context, tx *sqlx.Tx) (im.TxEnd, error), after func(error)) {
	a.push(&appendReq{job: fn, after: after})
}

// close stores what is queued, answers it, and stops.
func (a *appender) close() {
	a.mu.Lock()
	first := !a.closed
	a.closed = true
	a.mu.Unlock()
	if first {
		close(a.quit) // nothing can be queued any more: the worker drains the queue and stops
	}
	<-a.stopped
}

func (a *appender) work() {
	defer close(a.answers)
	for {
		select {
		case first := <-a.queue:
			a.run(a.gather(first))
		case <-a.quit:
			for { // store what was queued before close, then stop
				select {
				case r := <-a.queue:
					a.run(a.gather(r))
				default:
					return
				}
			}
		}
	}
}

// answer calls the done of every write, in queue order.
//
// A group's answers deliver its messages: hundreds of packets queued in a
// burst, some to the same connection. Every yieldEvery answers this
// goroutine lets the others run, the connections' writers among them, so
// that a connection's queue (256 packets, see broker) drains as it fills
// instead of overflowing while its writer waits for a core; an overflow
// disconnects the client.
func (a *appender) answer() {
	defer close(a.stopped)
	for g := range a.answers {
		for i, r := range g.reqs {
			r.answer(g.res[i])
			if i%yieldEvery == yieldEvery-1 {
				runtime.Gosched()
			}
		}
	}
}

// yieldEvery is how many answers the answering goroutine gives before it
// lets other goroutines run.
const yieldEvery = 32

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

// run stores a group and hands its answers on.
func (a *appender) run(group []*appendReq) {
	// A group waits at most 30 s for PostgreSQL. SQLite runs in this
	// process and waits for another writer at most its busy timeout; a
	// context that can end would cost each of its statements a goroutine
	// watching it (modernc.org/sqlite).
	ctx := context.Background()
	if a.s.engine == Postgres {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	res := make([]appendRes, len(group))
	// A message re-sent while its first copy waits in the same group (same
	// sender, conversation and cid) follows that copy: stored once,
	// answered as a re-send.
	follows := map[int]int{}
	leaders := map[dupKey]int{}
	var live []int // indexes of the writes still to run
	for i, r := range group {
		if !r.isJob() && r.m.CID != "" {
			if l, ok := leaders[keyOf(r.m)]; ok {
				follows[i] = l
				continue
			}
			leaders[keyOf(r.m)] = i
		}
		live = append(live, i)
	}
	saved := false // jobs without savepoints, until one fails or rolls back
	for len(live) > 0 {
		dups, err := a.runGroup(ctx, group, live, res, saved)
		if errors.Is(err, errJobUndone) && !saved {
			saved = true // again, each job in a savepoint of its own
			continue
		}
		if err != nil {
			break
		}
		if len(dups) == 0 {
			live = nil
			break
		}
		// Re-sent messages found: answer them with the stored copy and
		// run the rest without them.
		rest := live[:0]
		for _, i := range live {
			m := group[i].m
			// A copy with the message's own id is the message itself,
			// inserted by this transaction before the rollback.
			if d, ok := dups[keyOf(m)]; ok && !group[i].isJob() && m.CID != "" && d.ID != m.ID {
				res[i] = appendRes{m: d, dup: true}
			} else {
				rest = append(rest, i)
			}
		}
		if len(rest) == len(live) {
			break // the duplicates match nobody here: one by one
		}
		live = rest
	}
	// The group failed: run its writes one by one, each with its own
	// answer.
	for _, i := range live {
		res[i] = a.runAlone(ctx, group[i])
	}
	for i, l := range follows {
		res[i] = res[l]
		if res[i].err == nil {
			res[i].dup = true
		}
	}
	a.answers <- answered{reqs: group, res: res}
}

// runGroup runs the writes live of group in one transaction and, once it
// is committed, fills their answers in res. If some messages were stored
// before (same sender, conversation and cid), it rolls back and returns
// them in dups. An error means the group failed as a whole.
//
// Jobs run in savepoints of their own when saved. Otherwise (the common
// case: a savepoint is a round trip on PostgreSQL) a job that fails or
// rolls back, among other writes, undoes the whole group, which answers
// errJobUndone: the caller runs it again, saved.
func (a *appender) runGroup(ctx context.Context, group []*appendReq, live []int, res []appendRes, saved bool) (map[dupKey]im.Message, error) {
	if a.s.sql.oneTrip != "" && !slices.ContainsFunc(live, func(i int) bool { return group[i].isJob() }) {
		// PostgreSQL, messages only: one statement, one round trip.
		msgs := make([]im.Message, len(live))
		for k, i := range live {
			msgs[k] = group[i].m
		}
		stored, err := a.s.appendOneTrip(ctx, msgs)
		if err == nil {
			for k, i := range live {
				res[i] = appendRes{m: stored[k]}
			}
			return nil, nil
		}
		if !errors.Is(err, im.ErrConflict) && !transient(err) {
			return nil, err
		}
		// A re-sent message (or a deadlock): the transaction below finds it.
	}
	out := make([]appendRes, len(live))
	var dups map[dupKey]im.Message
	savepoints := saved && len(live) > 1
	_, err := a.s.inTx(ctx, func(tx *sqlx.Tx) (im.TxEnd, error) {
		open := false // a job's savepoint, still to release
		// runJob runs the k-th live write's job (or its full path); false
		// ends the transaction, rolled back with err.
		runJob := func(k int, job func(context.Context, *sqlx.Tx) (im.TxEnd, error)) (bool, error) {
			var err error
			if out[k].err, err = a.s.runSaved(ctx, tx, job, savepoints, &open); err != nil {
				return false, err
			}
			if !savepoints && out[k].err != nil {
				if len(live) > 1 {
					return false, errJobUndone
				}
				return false, nil // the lone job failed: nothing else to keep
			}
			return true, nil
		}
		for k := 0; k < len(live); {
			if r := group[live[k]]; r.open != nil && !saved && a.s.sql.oneTrip != "" {
				// Customers' messages, up to the next write of another kind.
				n := k
				var reqs []*appendReq
				for n < len(live) && group[live[n]].open != nil {
					reqs = append(reqs, group[live[n]])
					n++
				}
				if ok, err := a.runOpen(ctx, tx, reqs, out[k:n], func(i int) (bool, error) {
					return runJob(k+i, reqs[i].fallback)
				}); !ok {
					return im.Rollback, err
				}
				k = n
				continue
			}
			if r := group[live[k]]; r.isJob() {
				if ok, err := runJob(k, r.job); !ok {
					return im.Rollback, err
				}
				k++
				continue
			}
			// The messages up to the next job, stored together.
			n := k
			for n < len(live) && !group[live[n]].isJob() {
				n++
			}
			msgs := make([]im.Message, n-k)
			for j := range msgs {
				msgs[j] = group[live[k+j]].m
			}
			stored, err := a.s.appendMessages(ctx, tx, msgs)
			if err != nil {
				return im.Rollback, err
			}
			if len(stored.dups) > 0 {
				dups = stored.dups
				return im.Rollback, nil
			}
			for j, m := range stored.msgs {
				out[k+j] = appendRes{m: m}
			}
			k = n
		}
		return im.Commit, nil
	})
	if err != nil || dups != nil {
		return dups, err
	}
	for k, i := range live {
		if errors.Is(out[k].err, errRolledBack) {
			out[k].err = nil
		}
		res[i] = out[k]
	}
	return nil, nil
}

// runSaved runs a job in tx, in a savepoint of its own when saved, and
// returns the job's own error. The savepoint is rolled back to if the job
// fails or wants its work undone. err reports that tx itself failed.
//
// On PostgreSQL a savepoint is released when the next one is made, in the
// same round trip (open says one is still to release), or by the commit:
// a job costs one round trip for its savepoint, not two.
func (s *Store) runSaved(ctx context.Context, tx *sqlx.Tx, job func(context.Context, *sqlx.Tx) (im.TxEnd, error), saved bool, open *bool) (jobErr, err error) {
	if !saved {
		end, jobErr := job(ctx, tx)
		if transient(jobErr) {
			return nil, jobErr
		}
		if jobErr == nil && end == im.Rollback {
			jobErr = errRolledBack
		}
		return jobErr, nil
	}
	q := `SAVEPOINT job`
	if *open {
		// Two statements in one simple query (no parameters).
		q = `RELEASE SAVEPOINT job; SAVEPOINT job`
	}
	if _, err := tx.ExecContext(ctx, q); err != nil {
		return nil, mapErr(err)
	}
	*open = true
	end, jobErr := job(ctx, tx)
	if transient(jobErr) {
		// A deadlock with another server's transaction, say: the whole
		// group runs again, one write at a time.
		return nil, jobErr
	}
	if jobErr != nil || end == im.Rollback {
		// The savepoint stays, empty, until it is released.
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT job`); err != nil {
			return jobErr, mapErr(err)
		}
	}
	if s.engine != Postgres { // in-process: no round trip to save
		if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT job`); err != nil {
			return jobErr, mapErr(err)
		}
		*open = false
	}
	return jobErr, nil
}

// errJobUndone reports a group undone by one of its jobs, run without
// savepoints: it runs again, with them.
var errJobUndone = errors.New("a job failed or rolled back: the group runs again with savepoints")

// errRolledBack marks a lone job that chose to roll back: its transaction
// ends, and the job's answer is no error.
var errRolledBack = errors.New("rolled back")

// runAlone runs one write in a transaction of its own, again while it
// fails for a transient reason (a few times).
func (a *appender) runAlone(ctx context.Context, r *appendReq) appendRes {
	for attempt := 1; ; attempt++ {
		res := a.runOnce(ctx, r)
		if attempt == 4 || !transient(res.err) || ctx.Err() != nil {
			return res
		}
		time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
	}
}

// runOnce runs one write in a transaction of its own.
func (a *appender) runOnce(ctx context.Context, r *appendReq) appendRes {
	var res appendRes
	_, err := a.s.inTx(ctx, func(tx *sqlx.Tx) (im.TxEnd, error) {
		if r.isJob() {
			return r.job(ctx, tx)
		}
		var err error
		if res.m, res.dup, err = a.s.appendTx(ctx, tx, r.m); err != nil || res.dup {
			return im.Rollback, err
		}
		return im.Commit, nil
	})
	if err != nil {
		if r.isJob() {
			return appendRes{err: err}
		}
		return appendRes{err: fmt.Errorf("append to %s: %w", r.m.Conv, err)}
	}
	return res
}
