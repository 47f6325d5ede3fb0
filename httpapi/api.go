// Package httpapi serves the REST API of PROTOCOL.md §2 with gin, and
// mounts MQTT over WebSocket at /mqtt on the same port. Handlers bind the
// request, call the domain, and write JSON; every error leaves through
// API.fail.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
)

// Tokens issues and verifies access tokens (implemented by *auth.Tokens).
type Tokens interface {
	Issue(p im.Principal) (string, error)
	Verify(token string) (im.Principal, time.Time, error)
	TTL() time.Duration
}

// Options configures the API.
type Options struct {
	Service *im.Service
	Tokens  Tokens
	// MQTT serves MQTT over WebSocket at /mqtt.
	MQTT http.Handler
	// Ready reports whether the server accepts HTTP and MQTT (GET /healthz).
	Ready func() bool
	Log   *slog.Logger
	// RequestTimeout bounds each request's work. Default 15s.
	RequestTimeout time.Duration
	// Limits of the endpoints anyone may call (throttle.go).
	Limits Limits
}

// API is the REST API.
type API struct {
	svc     *im.Service
	tokens  Tokens
	log     *slog.Logger
	timeout time.Duration
	guard   *guard
}

// New returns the HTTP handler of the server: REST under /api/v1, /healthz,
// and /mqtt.
func New(o Options) http.Handler {
	a := &API{svc: o.Service, tokens: o.Tokens, log: o.Log, timeout: o.RequestTimeout, guard: newGuard(o.Limits)}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.timeout <= 0 {
		a.timeout = 15 * time.Second
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true
	r.HandleMethodNotAllowed = false
	r.Use(a.recoverer, a.accessLog)
	r.NoRoute(func(c *gin.Context) {
		a.fail(c, apiError(im.ErrNotFound, "no such endpoint: "+c.Request.Method+" "+c.Request.URL.Path))
	})

	r.GET("/healthz", func(c *gin.Context) {
		if o.Ready != nil && !o.Ready() {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "starting"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	if o.MQTT != nil {
		r.GET("/mqtt", gin.WrapH(o.MQTT)) // no timeout: the session lives as long as the socket
	}

	v1 := r.Group("/api/v1", a.deadline)
	v1.POST("/auth/register", a.registerLimit, a.passwordGate, a.register)
	v1.POST("/auth/login", a.passwordGate, a.login)

	u := v1.Group("", a.authenticate)
	u.GET("/me", a.me)
	u.GET("/conversations", a.conversations)
	u.GET("/conversations/:conv/messages", a.history)
	u.POST("/conversations/:conv/messages", a.postMessage)
	u.POST("/conversations/:conv/read", a.markRead)
	u.POST("/broadcasts", a.broadcast)
	a.roomRoutes(u)
	a.shopRoutes(u)
	return r
}

// deadline bounds the request's work.
func (a *API) deadline(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), a.timeout)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

func (a *API) recoverer(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.Error("panic serving request", "method", c.Request.Method, "path", c.Request.URL.Path, "panic", v)
			a.fail(c, errPanic)
		}
	}()
	c.Next()
}

type panicError struct{}

func (panicError) Error() string { return "internal server error" }

var errPanic error = panicError{}

func (a *API) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	level := slog.LevelDebug
	if c.Writer.Status() >= 500 {
		level = slog.LevelWarn
	}
	a.log.Log(c.Request.Context(), level, "http", "method", c.Request.Method, "path", c.FullPath(),
		"status", c.Writer.Status(), "duration", time.Since(start))
}

const principalKey = "imserver.principal"

// authenticate requires an access token, from the Authorization header
// (Bearer) or the access_token query parameter.
func (a *API) authenticate(c *gin.Context) {
	token := ""
	if h := c.GetHeader("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			a.fail(c, apiError(im.ErrUnauthorized, "the Authorization header must be \"Bearer <access_token>\""))
			return
		}
		token = strings.TrimSpace(rest)
	} else {
		token = c.Query("access_token")
	}
	if token == "" {
		a.fail(c, apiError(im.ErrUnauthorized, "an access token is required: log in at POST /api/v1/auth/login"))
		return
	}
	p, _, err := a.tokens.Verify(token)
	if err != nil {
		a.fail(c, apiError(im.ErrUnauthorized, "the access token is invalid or expired: log in again"))
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

func principal(c *gin.Context) im.Principal {
	p, _ := c.Get(principalKey)
	return p.(im.Principal)
}

// idParam parses a positive integer path parameter.
func idParam(c *gin.Context, name string) (int64, error) {
	n, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || n <= 0 {
		return 0, apiError(im.ErrInvalid, name+" must be a positive integer")
	}
	return n, nil
}

// intQuery parses an optional non-negative integer query parameter.
func intQuery(c *gin.Context, name string) (int64, error) {
	s, ok := c.GetQuery(name)
	if !ok || s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, apiError(im.ErrInvalid, name+" must be a non-negative integer")
	}
	return n, nil
}
