package im

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// workers runs the domain's background work (draining a shop's queue when
// an agent becomes reachable) on goroutines the domain owns, so that no
// MQTT client's read goroutine waits for it and shutdown can wait for it.
// A job is keyed: a job whose key is already waiting is not queued again,
// so the queue is bounded by the number of distinct keys.
type workers struct {
	log *slog.Logger
	n   int

	ctx    context.Context // cancelled when stopping times out
	cancel context.CancelFunc
	ticks  chan struct{} // closed by stop: periodic jobs stop queueing
	wg     sync.WaitGroup

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []job
	waiting  map[string]bool
	stopped  bool
	periodic []periodic
}

// periodic is a job queued at every tick of its interval.
type periodic struct {
	every time.Duration
	job
}

type job struct {
	key string
	run func(ctx context.Context)
}

// numWorkers is how many jobs run at once. Jobs are short database
// transactions; two keep one slow shop from holding up the others.
const numWorkers = 2

func newWorkers(log *slog.Logger) *workers {
	w := &workers{log: log, n: numWorkers, waiting: make(map[string]bool), ticks: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// every has run queued under key every interval, from start to stop.
// Call it before start.
func (w *workers) every(interval time.Duration, key string, run func(ctx context.Context)) {
	w.periodic = append(w.periodic, periodic{every: interval, job: job{key: key, run: run}})
}

func (w *workers) start() {
	for range w.n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.loop()
		}()
	}
	for _, p := range w.periodic {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			t := time.NewTicker(p.every)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					w.do(p.key, p.run)
				case <-w.ticks:
					return
				}
			}
		}()
	}
}

// do queues run under key, unless a job with that key is already waiting
// (one that is running does not count: it may have missed what prompted
// this one). After stop, it does nothing.
func (w *workers) do(key string, run func(ctx context.Context)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped || w.waiting[key] {
		return
	}
	w.waiting[key] = true
	w.queue = append(w.queue, job{key: key, run: run})
	w.cond.Signal()
}

func (w *workers) loop() {
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.stopped {
			w.cond.Wait()
		}
		if w.stopped {
			w.mu.Unlock()
			return
		}
		j := w.queue[0]
		w.queue[0] = job{}
		w.queue = w.queue[1:]
		delete(w.waiting, j.key)
		w.mu.Unlock()
		w.run(j)
	}
}

func (w *workers) run(j job) {
	defer func() {
		if v := recover(); v != nil {
			w.log.Error("background job panicked", "job", j.key, "panic", v)
		}
	}()
	j.run(w.ctx)
}

// stopTickers ends the periodic jobs' tickers, once.
func (w *workers) stopTickers() {
	select {
	case <-w.ticks:
	default:
		close(w.ticks)
	}
}

// stop drops the jobs that have not started (their work is kept in the
// database and picked up by the next event) and waits for the running ones,
// cancelling them if ctx ends first.
func (w *workers) stop(ctx context.Context) error {
	w.mu.Lock()
	w.stopped = true
	w.queue, w.waiting = nil, nil
	w.cond.Broadcast()
	w.mu.Unlock()
	w.stopTickers()
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		w.cancel()
		return nil
	case <-ctx.Done():
		w.cancel()
		<-done
		return errors.Join(errors.New("background work cancelled"), ctx.Err())
	}
}
