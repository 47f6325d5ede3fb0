package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
)

// The appender commits messages in groups. Each AppendMessage call queues
// its message and waits; a worker takes everything queued, stores it in one
// transaction with appendMessages (a fixed handful of multi-row
// statements), commits once, and answers every caller. Nothing waits on purpose: while one group commits,
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
		res, err := a.storeGroup(ctx, live)
		if err == nil && len(res.dups) == 0 {
			for i, r := range live {
				r.done <- appendRes{m: res.msgs[i]}
			}
			return
		}
		if err != nil {
			break
		}
		// Re-sent messages found: answer them with the stored copy and
		// store the rest without them.
		rest := live[:0]
		for _, r := range live {
			if d, ok := res.dups[keyOf(r.m)]; ok && r.m.CID != "" {
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
		var created []string
		end, err := a.s.inTx(ctx, func(tx *sqlx.Tx) (im.TxEnd, error) {
			var err error
			if res.m, res.dup, created, err = a.s.appendTx(ctx, tx, r.m); err != nil || res.dup {
				return im.Rollback, err
			}
			return im.Commit, nil
		})
		if err != nil {
			res = appendRes{err: fmt.Errorf("append to %s: %w", r.m.Conv, err)}
		} else if end == im.Commit {
			a.s.knownConvs.add(created...)
		}
		r.done <- res
	}
}

// storeGroup stores a group in one transaction. If some messages were
// already stored (same sender, conversation and cid), it stores nothing and
// returns them in dups.
func (a *appender) storeGroup(ctx context.Context, group []*appendReq) (appended, error) {
	msgs := make([]im.Message, len(group))
	for i, r := range group {
		msgs[i] = r.m
	}
	var res appended
	end, err := a.s.inTx(ctx, func(tx *sqlx.Tx) (im.TxEnd, error) {
		var err error
		if res, err = a.s.appendMessages(ctx, tx, msgs); err != nil || len(res.dups) > 0 {
			return im.Rollback, err
		}
		return im.Commit, nil
	})
	if err == nil && end == im.Commit {
		a.s.knownConvs.add(res.created...)
	}
	return res, err
}
