// Package netguard protects a server's accept loop from clients that open
// connections and then do nothing with them. A Listener wraps a
// net.Listener and
//
//   - limits how many new connections per second it hands out, per client
//     address and for the whole listener (token buckets), so that one
//     address churning connections cannot use up everyone's rate;
//   - limits how many connections one client address may have that have
//     not yet been admitted (finished their handshake: an MQTT CONNACK, a
//     first HTTP response), so that one address cannot use up the
//     process's file descriptors or the rate;
//   - keeps serving when the process runs out of file descriptors (EMFILE,
//     ENFILE): it keeps one descriptor in reserve, and when accept fails it
//     frees it, accepts the waiting connection, closes it at once and takes
//     the reserve back, so the backlog drains instead of the loop spinning
//     on the same error; without a reserve it backs off.
//
// Connections refused by a limit are closed as soon as they are accepted.
// The connections it returns are *Conn; the server calls Admit once the
// client has shown it is a real one.
package netguard

import (
	"errors"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/imserver/imserver/internal/throttle"
)

// Options configures a Listener. The zero value limits nothing but still
// survives descriptor exhaustion.
type Options struct {
	// Rate is how many new connections per second the listener accepts,
	// with bursts of as many; 0 or less is unlimited.
	Rate float64
	// RatePerIP is how many new connections per second one client
	// address (an IPv6 /64) may open, with bursts of as many; 0 or less is
	// unlimited. Connections it refuses do not count against Rate.
	RatePerIP float64
	// PendingPerIP is how many connections one client address (an IPv6
	// /64) may have open that have not been admitted; 0 or less is
	// unlimited.
	PendingPerIP int
	// Exempt lists peers that PendingPerIP does not apply to: trusted
	// reverse proxies, whose one address carries many clients.
	Exempt *throttle.Proxies
	// Name names the listener in logs.
	Name string
	Log  *slog.Logger
	// Now is the clock of the rate limit; default time.Now.
	Now func() time.Time
}

// Listener is a net.Listener with the limits of Options.
type Listener struct {
	net.Listener
	o       Options
	pending *throttle.Gate[netip.Addr]
	perIP   *throttle.Limiter[netip.Addr]
	done    chan struct{}
	close   sync.Once

	mu        sync.Mutex // the rate bucket, the reserve descriptor and the counters
	tokens    float64
	last      time.Time
	reserve   *os.File
	refused   struct{ rate, rateIP, pending, shed, stalled int64 }
	lastPrint time.Time
}

// reportEvery is how often the refusal counters are logged, at most.
const reportEvery = 10 * time.Second

// Wrap returns ln with the limits of o.
func Wrap(ln net.Listener, o Options) *Listener {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Listener{Listener: ln, o: o, pending: throttle.NewGate[netip.Addr](o.PendingPerIP), done: make(chan struct{}),
		perIP: throttle.NewLimiter[netip.Addr](throttle.LimiterOptions{Rate: o.RatePerIP, Burst: int(math.Ceil(o.RatePerIP)), Now: o.Now})}
	l.tokens = l.burst()
	l.last = o.Now()
	l.reserve, _ = os.Open(os.DevNull)
	return l
}

func (l *Listener) burst() float64 { return math.Max(1, math.Ceil(l.o.Rate)) }

// Accept returns the next connection that passes the limits, as a *Conn.
func (l *Listener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !outOfDescriptors(err) {
				return nil, err
			}
			if l.shed() {
				backoff = 0
				continue
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.note(func() { l.refused.stalled++ })
			select {
			case <-time.After(backoff):
			case <-l.done:
				return nil, net.ErrClosed
			}
			continue
		}
		backoff = 0
		peer := throttle.AddrOf(c.RemoteAddr().String())
		release := func() {}
		if !l.o.Exempt.Contains(peer) {
			key := throttle.Key(peer)
			r, ok := l.pending.Enter(key)
			if !ok {
				c.Close()
				l.note(func() { l.refused.pending++ })
				continue
			}
			release = r
			if ok, _ := l.perIP.Allow(key); !ok {
				release()
				c.Close()
				l.note(func() { l.refused.rateIP++ })
				continue
			}
		}
		if !l.allow() {
			release()
			c.Close()
			l.note(func() { l.refused.rate++ })
			continue
		}
		return &Conn{Conn: c, release: release}, nil
	}
}

// Close closes the listener.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.close.Do(func() {
		close(l.done)
		l.mu.Lock()
		if l.reserve != nil {
			l.reserve.Close()
			l.reserve = nil
		}
		l.mu.Unlock()
	})
	return err
}

// Pending returns how many connections from addr have not been admitted.
func (l *Listener) Pending(addr netip.Addr) int { return l.pending.Active(throttle.Key(addr)) }

func (l *Listener) allow() bool {
	if l.o.Rate <= 0 {
		return true
	}
	now := l.o.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens = math.Min(l.burst(), l.tokens+now.Sub(l.last).Seconds()*l.o.Rate)
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}

// shed frees the reserve descriptor, accepts the connection that could not
// be accepted and closes it, and takes the reserve back. It reports
// whether it got rid of a connection.
func (l *Listener) shed() bool {
	l.mu.Lock()
	reserve := l.reserve
	l.reserve = nil
	if reserve == nil {
		l.reopenLocked() // perhaps descriptors are free again
		l.mu.Unlock()
		return false
	}
	l.mu.Unlock()
	reserve.Close()
	c, err := l.Listener.Accept()
	if err == nil {
		c.Close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reopenLocked()
	if err == nil {
		l.refused.shed++
		l.reportLocked()
	}
	return err == nil
}

// reopenLocked takes a reserve descriptor, unless the listener is closed.
func (l *Listener) reopenLocked() {
	select {
	case <-l.done:
		return
	default:
	}
	if l.reserve == nil {
		l.reserve, _ = os.Open(os.DevNull)
	}
}

// note counts a refusal and logs the counters if it is time to.
func (l *Listener) note(count func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	count()
	l.reportLocked()
}

func (l *Listener) reportLocked() {
	now := time.Now()
	if now.Sub(l.lastPrint) < reportEvery {
		return
	}
	r := l.refused
	if r == (struct{ rate, rateIP, pending, shed, stalled int64 }{}) {
		return
	}
	l.lastPrint = now
	l.refused = struct{ rate, rateIP, pending, shed, stalled int64 }{}
	if r.shed > 0 || r.stalled > 0 {
		l.o.Log.Warn("out of file descriptors: closing new connections at once; raise the limit (ulimit -n, LimitNOFILE)",
			"listener", l.o.Name, "closed", r.shed, "waits", r.stalled)
	}
	if r.rate > 0 || r.rateIP > 0 || r.pending > 0 {
		l.o.Log.Warn("refused connections", "listener", l.o.Name,
			"over_conn_rate", r.rate, "over_conn_rate_per_ip", r.rateIP, "over_pending_per_ip", r.pending)
	}
}

func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// Conn is a connection from a Listener. Until Admit is called it counts
// against its client address's pending connections.
type Conn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Admit ends the connection's pending phase: the client has completed its
// handshake. It is safe to call more than once.
func (c *Conn) Admit() { c.once.Do(c.release) }

// Close closes the connection (and admits it, freeing its pending slot).
func (c *Conn) Close() error {
	c.Admit()
	return c.Conn.Close()
}

// CloseWrite shuts down the writing side, when the connection can.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Admit admits c if it is a connection from a Listener (or wraps one that
// says so through an Admit method), and does nothing otherwise.
func Admit(c net.Conn) {
	if a, ok := c.(interface{ Admit() }); ok {
		a.Admit()
	}
}
