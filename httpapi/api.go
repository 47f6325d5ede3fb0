// Package httpapi serves the REST API of PROTOCOL.md §2 with gin, and
// mounts MQTT over WebSocket at /mqtt on the same port. Handlers bind the
// request, call the domain and return what to answer (see handle); the
// domain's types become the contract's JSON shapes in one place
// (mapping.go), and every error leaves through API.fail.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/uploads"
)

// Options configures the API.
type Options struct {
	Domain *im.Service
	// MQTT serves MQTT over WebSocket at /mqtt.
	MQTT http.Handler
	// Web serves every path outside /api/, /mqtt and /healthz (the web
	// client); nil answers them with the JSON 404 of the API.
	Web http.Handler
	// Ready reports whether the server accepts HTTP and MQTT (GET /healthz).
	Ready func() bool
	Log   *slog.Logger
	// RequestTimeout bounds each request's work. Default 15s.
	RequestTimeout time.Duration
	// Uploads keeps uploaded files; nil disables POST /uploads.
	Uploads *uploads.Store
	// PublicURL is the server's URL as clients reach it (for the absolute
	// URLs of uploads); "" takes each request's scheme and Host.
	PublicURL string
	// Limits of the endpoints anyone may call (throttle.go).
	Limits Limits
}

// API is the REST API.
type API struct {
	accounts *im.Accounts
	chat     *im.Chat
	rooms    *im.Rooms
	support  *im.Support
	uploads  *uploads.Store
	log      *slog.Logger
	timeout  time.Duration
	public   string
	guard    *guard
}

// New returns the HTTP handler of the server: REST under /api/v1, /healthz,
// and /mqtt.
func New(o Options) http.Handler {
	a := &API{uploads: o.Uploads, log: o.Log, timeout: o.RequestTimeout, public: strings.TrimRight(o.PublicURL, "/"), guard: newGuard(o.Limits)}
	if d := o.Domain; d != nil {
		a.accounts, a.chat, a.rooms, a.support = d.Accounts, d.Chat, d.Rooms, d.Support
	}
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
		if p := c.Request.URL.Path; o.Web != nil && !strings.HasPrefix(p, "/api/") && p != "/api" && p != "/mqtt" && p != "/healthz" {
			o.Web.ServeHTTP(c.Writer, c.Request)
			return
		}
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
	v1.POST("/auth/register", a.registerLimit, a.passwordGate, a.handle(a.register))
	v1.POST("/auth/login", a.passwordGate, a.handle(a.login))
	v1.POST("/auth/guest", a.guestLimit, a.handle(a.guest))
	v1.POST("/auth/visitor", a.guestLimit, a.handle(a.visitor))

	// Everyone signed in, guests included (PROTOCOL.md §6): the domain
	// keeps guests to their own customer-service conversations.
	g := v1.Group("", a.authenticate)
	g.GET("/me", a.handle(a.me))
	g.POST("/auth/logout", a.handle(a.logout))
	g.GET("/conversations", a.handle(a.conversations))
	g.GET("/conversations/:conv/messages", a.handle(a.history))
	g.POST("/conversations/:conv/messages", a.handle(a.postMessage))
	g.POST("/conversations/:conv/read", a.handle(a.markRead))
	g.PUT("/shops/:shop_id/context", a.handle(a.setContext))
	a.uploadRoutes(r, g)

	// Users and admins only: guests get 403.
	u := g.Group("", a.usersOnly)
	u.PUT("/me/password", a.handle(a.changePassword))
	u.POST("/broadcasts", a.handle(a.broadcast))
	u.GET("/users", a.handle(a.findUsers))
	u.POST("/users/:uid/disable", a.handle(a.disableUser))
	u.POST("/users/:uid/enable", a.handle(a.enableUser))
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
	p, _, err := a.accounts.Authenticate(c.Request.Context(), token)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

// usersOnly refuses guests (PROTOCOL.md §6): everything but their own
// customer-service conversations, uploads and their account is closed to
// them.
func (a *API) usersOnly(c *gin.Context) {
	if principal(c).IsGuest() {
		a.fail(c, apiError(im.ErrForbidden, "guests may only talk to shops"))
		return
	}
	c.Next()
}

func principal(c *gin.Context) im.Principal {
	p, _ := c.Get(principalKey)
	return p.(im.Principal)
}
