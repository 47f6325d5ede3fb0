package httpapi

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/internal/throttle"
)

// Limits are the abuse limits of the endpoints anyone may call
// (PROTOCOL.md §6). The zero value limits logins to the contract's
// default (10 failures per username and client IP per 15 minutes) and
// nothing else.
type Limits struct {
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; everyone else is known by the TCP peer's address.
	TrustedProxies *throttle.Proxies
	// RegisterPerMinute limits registrations per client IP; 0 is
	// unlimited.
	RegisterPerMinute int
	// GuestsPerMinute limits the guest and visitor sign-ins of one client
	// IP (each makes or signs in an account); 0 is unlimited.
	GuestsPerMinute int
	// LoginFailures failed logins for one username from one client IP
	// within LoginWindow block further attempts (429) until the oldest
	// leaves the window. Defaults 10 and 15 minutes; a negative
	// LoginFailures disables it.
	LoginFailures int
	LoginWindow   time.Duration
	// PasswordChecksPerIP limits the logins and registrations one client
	// IP may have in progress at once, so that one client cannot take
	// every password-hashing slot; 0 is unlimited.
	PasswordChecksPerIP int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// guard holds the limiters of Limits.
type guard struct {
	proxies  *throttle.Proxies
	register *throttle.Limiter[netip.Addr]
	guests   *throttle.Limiter[netip.Addr]
	logins   *throttle.Window[loginKey]
	checks   *throttle.Gate[netip.Addr]
}

// loginKey is what login throttling counts failures by.
type loginKey struct {
	ip   netip.Addr
	user string
}

func newGuard(l Limits) *guard {
	if l.LoginFailures == 0 {
		l.LoginFailures = 10
	}
	if l.LoginWindow <= 0 {
		l.LoginWindow = 15 * time.Minute
	}
	reg := throttle.PerMinute(l.RegisterPerMinute)
	reg.Now = l.Now
	guests := throttle.PerMinute(l.GuestsPerMinute)
	guests.Now = l.Now
	return &guard{
		proxies:  l.TrustedProxies,
		register: throttle.NewLimiter[netip.Addr](reg),
		guests:   throttle.NewLimiter[netip.Addr](guests),
		logins:   throttle.NewWindow[loginKey](throttle.WindowOptions{Max: l.LoginFailures, Per: l.LoginWindow, Now: l.Now}),
		checks:   throttle.NewGate[netip.Addr](l.PasswordChecksPerIP),
	}
}

// clientKey returns the address the request's client is limited as.
func (a *API) clientKey(c *gin.Context) netip.Addr {
	return throttle.Key(throttle.ClientIP(c.Request, a.guard.proxies))
}

// passwordGate admits a request that will hash a password if its client
// has fewer than Limits.PasswordChecksPerIP of them in progress.
func (a *API) passwordGate(c *gin.Context) {
	release, ok := a.guard.checks.Enter(a.clientKey(c))
	if !ok {
		a.fail(c, retryAfter(apiError(im.ErrRateLimited, "too many logins or registrations in progress from your address: try again in a moment"), time.Second))
		return
	}
	defer release()
	c.Next()
}

// registerLimit applies Limits.RegisterPerMinute.
func (a *API) registerLimit(c *gin.Context) {
	if ok, wait := a.guard.register.Allow(a.clientKey(c)); !ok {
		a.fail(c, retryAfter(apiError(im.ErrRateLimited, "too many registrations from your address: try again later"), wait))
		return
	}
	c.Next()
}

// guestLimit applies Limits.GuestsPerMinute.
func (a *API) guestLimit(c *gin.Context) {
	if ok, wait := a.guard.guests.Allow(a.clientKey(c)); !ok {
		a.fail(c, retryAfter(apiError(im.ErrRateLimited, "too many guest sign-ins from your address: try again later"), wait))
		return
	}
	c.Next()
}

// throttleLogin refuses a login for username while its client has failed
// too often with it. Otherwise it counts the attempt as a failure until
// it is known (so that concurrent attempts cannot all slip under the
// limit) and returns done, to be called with the login's result: a
// failure stays counted, a success clears the count, anything else (the
// server was busy) is taken back.
func (a *API) throttleLogin(c *gin.Context, username string) (done func(error), err error) {
	user := strings.ToLower(username)
	if len(user) > 64 {
		user = "\x00long" // not a username; keep the table's keys small
	}
	k := loginKey{ip: a.clientKey(c), user: user}
	if wait := a.guard.logins.Take(k); wait > 0 {
		return nil, retryAfter(apiError(im.ErrRateLimited, fmt.Sprintf("too many failed logins for this username: try again in %s", roundUp(wait))), wait)
	}
	return func(err error) {
		switch {
		case err == nil:
			a.guard.logins.Reset(k)
		case !errors.Is(err, im.ErrUnauthorized):
			a.guard.logins.Undo(k)
		}
	}, nil
}

// retryError is a refusal that says when to try again (Retry-After).
type retryError struct {
	error
	after time.Duration
}

func (e retryError) Unwrap() error { return e.error }

func retryAfter(err error, after time.Duration) error { return retryError{err, after} }

// retryAfterSeconds is the Retry-After of a 429 or 503: the error's own,
// or 1 second.
func retryAfterSeconds(err error) int {
	var re retryError
	if errors.As(err, &re) && re.after > 0 {
		return int(math.Ceil(re.after.Seconds()))
	}
	return 1
}

func roundUp(d time.Duration) string {
	if d > time.Minute {
		return fmt.Sprintf("%d minutes", int(math.Ceil(d.Minutes())))
	}
	return fmt.Sprintf("%d seconds", int(math.Ceil(d.Seconds())))
}
