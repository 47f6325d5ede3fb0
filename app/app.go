// Package app assembles the server: store, broker, domain, hooks and REST
// API, in that order, and takes them down in reverse. cmd/imserver runs it
// from flags; tests run it in-process on loopback ports.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/xid"

	"github.com/imserver/imserver/auth"
	"github.com/imserver/imserver/broker"
	"github.com/imserver/imserver/hooks"
	"github.com/imserver/imserver/httpapi"
	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/internal/netguard"
	"github.com/imserver/imserver/internal/throttle"
	"github.com/imserver/imserver/store"
	"github.com/imserver/imserver/uploads"
	"github.com/imserver/imserver/web"
)

// Deadlines of an HTTP request: the whole request, body included, must
// arrive within DefaultHTTPReadTimeout of its start (REST bodies are at
// most 128 KiB), and the answer must be written within
// DefaultHTTPWriteTimeout.
const (
	DefaultHTTPReadTimeout  = 20 * time.Second
	DefaultHTTPWriteTimeout = 30 * time.Second
)

// Config is the server's configuration (PROTOCOL.md §1).
type Config struct {
	HTTPAddr      string // REST, MQTT over WebSocket at /mqtt
	MQTTAddr      string // MQTT over TCP; "" disables it
	DatabaseURL   string // postgres://…, postgresql://… or sqlite:PATH
	JWTSecret     string // "": generated once and kept
	AdminUsername string
	AdminPassword string // "": generated and logged once, when the admin is created
	TokenTTL      time.Duration
	// PublishRate and PublishBurst limit each user's sends per second; a
	// rate of 0 disables the limit.
	PublishRate  float64
	PublishBurst int
	// WSOrigins lists the browser origins allowed to open /mqtt; empty
	// allows all (authentication is by token, not cookie).
	WSOrigins []string
	// UploadDir keeps uploaded files; "" puts them in "uploads" next to the
	// SQLite file, or in data/uploads with PostgreSQL. UploadMax is the
	// largest file, in bytes.
	UploadDir string
	UploadMax int64
	// PublicURL is the URL users reach the server at
	// (https://chat.example.com): the absolute URLs of uploads start with
	// it ("" takes each request's), and when WSOrigins is a list, its
	// origin is allowed on /mqtt too.
	PublicURL string
	// MQTTPendingWrites and MQTTReadBuffer size each MQTT client's
	// outbound queue and socket read buffer; 0 takes the broker's
	// defaults (see broker.Options).
	MQTTPendingWrites int32
	MQTTReadBuffer    int
	// ConnRate limits the new connections each listener (HTTP, MQTT over
	// TCP) accepts per second; 0 is unlimited. One client address may open
	// a tenth of it (at least 1 per second).
	ConnRate float64
	// PendingPerIP limits the connections one client address may have
	// open on each listener before it has been answered (an MQTT CONNACK,
	// a first HTTP response); 0 is unlimited. Trusted proxies are exempt.
	PendingPerIP int
	// TrustedProxies is a comma-separated list of the IP addresses and
	// CIDR prefixes of reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies string
	// RegisterRate limits registrations per minute per client IP; 0 is
	// unlimited.
	RegisterRate int
	// GuestRate limits guest and visitor sign-ins per minute per client
	// IP; 0 is unlimited.
	GuestRate int
	// MaxSessions is how many MQTT connections and parked persistent
	// sessions one user may hold together (the oldest parked session goes
	// first); 0 is unlimited.
	MaxSessions int
	// ResumeMax is how many missed messages of one conversation a
	// reconnecting persistent MQTT session is sent at most (the newest,
	// after a resync event).
	ResumeMax int
	// LoginFailures failed logins for one username from one client IP
	// within LoginWindow are allowed; then 429 until the oldest leaves the
	// window. 0 takes the defaults, 10 per 15 minutes (PROTOCOL.md §6); a
	// negative LoginFailures disables it.
	LoginFailures int
	LoginWindow   time.Duration
	// HashConcurrency bounds the password hashes run at once (each holds
	// the KDF's memory, 19 MiB by default); 0 takes
	// auth.DefaultHashConcurrency. PasswordChecksPerIP bounds the logins
	// and registrations one client IP may have in progress; 0 takes 4, a
	// negative value is unlimited.
	HashConcurrency     int
	PasswordChecksPerIP int
	// HTTPReadTimeout and HTTPWriteTimeout bound each HTTP request and its
	// answer; 0 takes DefaultHTTPReadTimeout and DefaultHTTPWriteTimeout.
	HTTPReadTimeout  time.Duration
	HTTPWriteTimeout time.Duration

	// For tests and embedding: listeners to use instead of the addresses,
	// a password hasher instead of argon2id's defaults, a logger.
	HTTPListener net.Listener
	MQTTListener net.Listener
	Passwords    im.Passwords
	Log          *slog.Logger
}

// DefaultConfig returns the documented defaults (PROTOCOL.md §1), the one
// place they are written: cmd/imserver starts from them, and New fills
// the zero fields that must not stay zero from them.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:      ":8080",
		MQTTAddr:      ":1883",
		DatabaseURL:   "sqlite:data/im.db",
		AdminUsername: "admin",
		TokenTTL:      7 * 24 * time.Hour,
		PublishRate:   50,
		PublishBurst:  100,
		WSOrigins:     []string{"*"},
		UploadMax:     uploads.DefaultMax,
		ConnRate:      500,
		PendingPerIP:  32,
		RegisterRate:  60,
		GuestRate:     30,
		MaxSessions:   32,
		ResumeMax:     im.DefaultResumeMax,

		MQTTPendingWrites: broker.DefaultMaxPendingWrites,
	}
}

// withDefaults fills the zero fields of c that have no meaning as zero:
// the database, the admin's name, the token lifetime, the logger and the
// password hasher. (A zero PublishRate means unlimited, and no MQTTAddr no
// TCP listener: those stay as they are.)
func (c Config) withDefaults() Config {
	def := DefaultConfig()
	if c.DatabaseURL == "" {
		c.DatabaseURL = def.DatabaseURL
	}
	if c.AdminUsername == "" {
		c.AdminUsername = def.AdminUsername
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = def.TokenTTL
	}
	if c.UploadMax == 0 {
		c.UploadMax = def.UploadMax
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Passwords == nil {
		c.Passwords = auth.DefaultArgon2
	}
	if c.PasswordChecksPerIP == 0 {
		c.PasswordChecksPerIP = 4
	}
	if c.HTTPReadTimeout <= 0 {
		c.HTTPReadTimeout = DefaultHTTPReadTimeout
	}
	if c.HTTPWriteTimeout <= 0 {
		c.HTTPWriteTimeout = DefaultHTTPWriteTimeout
	}
	return c
}

// App is a running server.
type App struct {
	cfg      Config
	log      *slog.Logger
	store    *store.Store
	broker   *broker.Broker
	registry *hooks.Registry
	hook     *hooks.Hook
	domain   *im.Service
	tokens   *auth.Tokens
	http     *http.Server
	httpLn   net.Listener
	ready    atomic.Bool
	served   chan error
	closing  sync.Once
}

// New builds the server and binds its ports, but does not serve yet.
func New(ctx context.Context, cfg Config) (_ *App, err error) {
	cfg = cfg.withDefaults()
	// No packet or payload in the logs, and repeated records rate-limited
	// (a hostile client must not be able to fill the disk).
	cfg.Log = slog.New(broker.QuietHandler(cfg.Log.Handler()))
	a := &App{cfg: cfg, log: cfg.Log, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			a.closeAll()
		}
	}()

	proxies, err := throttle.ParseProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	var connRatePerIP float64
	if cfg.ConnRate > 0 {
		connRatePerIP = max(1, cfg.ConnRate/10)
	}
	if a.store, err = openStore(ctx, cfg.DatabaseURL, a.log); err != nil {
		return nil, err
	}
	secret, err := a.secret(ctx)
	if err != nil {
		return nil, err
	}
	installation, err := a.store.SettingOrInit(ctx, "installation_id", auth.NewSecret()[:32])
	if err != nil {
		return nil, fmt.Errorf("installation id: %w", err)
	}
	if a.tokens, err = auth.NewTokens(secret, installation, nil); err != nil {
		return nil, err
	}
	if a.broker, err = broker.New(broker.Options{
		TCPAddr: cfg.MQTTAddr, TCPListener: cfg.MQTTListener, AllowedOrigins: cfg.WSOrigins, PublicURL: cfg.PublicURL, Log: a.log,
		MaxPendingWrites: cfg.MQTTPendingWrites, ReadBufferSize: cfg.MQTTReadBuffer,
		ConnRate: cfg.ConnRate, ConnRatePerIP: connRatePerIP, PendingPerIP: cfg.PendingPerIP, TrustedProxies: proxies,
	}); err != nil {
		return nil, err
	}
	a.registry = hooks.NewRegistry(a.broker)
	if a.domain, err = im.New(ctx, im.Options{
		Store: a.store, Publisher: a.broker, Passwords: auth.Limit(cfg.Passwords, cfg.HashConcurrency, 0),
		Tokens: a.tokens, TokenTTL: cfg.TokenTTL, Live: a.registry, Log: a.log,
		NewID: func() string { return xid.New().String() }, PublishRate: cfg.PublishRate, PublishBurst: cfg.PublishBurst,
		ResumeMax: cfg.ResumeMax,
	}); err != nil {
		return nil, err
	}
	a.hook = hooks.New(hooks.Options{Chat: a.domain.Chat, Domain: a.domain, Tokens: a.domain.Accounts, Registry: a.registry, Log: a.log,
		MaxPacketSize: a.broker.MaxPacketSize(), MaxSessions: cfg.MaxSessions, MaxInflight: broker.ReceiveMaximum,
		Sessions: a.domain.Sessions})
	files, err := uploads.New(a.uploadDir(), cfg.UploadMax, a.store)
	if err != nil {
		return nil, err
	}
	if err := a.broker.AddHook(a.hook, nil); err != nil {
		return nil, fmt.Errorf("add hook: %w", err)
	}
	// Bind the HTTP port before the admin account is created: if the
	// port is taken, nothing has been done yet, and a generated admin
	// password is never printed by a start that then fails.
	httpLn := cfg.HTTPListener
	if httpLn == nil {
		if httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("http listener: %w", err)
		}
	}
	a.httpLn = netguard.Wrap(httpLn, netguard.Options{
		Rate: cfg.ConnRate, RatePerIP: connRatePerIP, PendingPerIP: cfg.PendingPerIP, Exempt: proxies, Name: "http", Log: a.log,
	})
	if err := a.bootstrapAdmin(ctx); err != nil {
		return nil, err
	}
	a.http = &http.Server{
		Handler: httpapi.New(httpapi.Options{
			Domain: a.domain, MQTT: a.broker.WebSocket(), Ready: a.ready.Load, Log: a.log,
			Uploads: files, PublicURL: cfg.PublicURL, Web: web.Handler(web.Options{Log: a.log}),
			Limits: httpapi.Limits{
				TrustedProxies: proxies, RegisterPerMinute: cfg.RegisterRate, GuestsPerMinute: cfg.GuestRate,
				LoginFailures: cfg.LoginFailures, LoginWindow: cfg.LoginWindow, PasswordChecksPerIP: cfg.PasswordChecksPerIP,
			},
		}),
		// Every phase of a request has a deadline, so a client that
		// trickles its headers or its body, or goes quiet, is cut off.
		// A WebSocket upgrade (/mqtt) clears them; the broker then has
		// its own (CONNECT within 10 s, then the MQTT keepalive).
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// A connection stops counting as pending for its address once a
		// request on it has been answered (WebSockets: at their CONNACK).
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateIdle {
				netguard.Admit(c)
			}
		},
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	return a, nil
}

// uploadDir is where uploaded files are kept.
func (a *App) uploadDir() string {
	switch {
	case a.cfg.UploadDir != "":
		return a.cfg.UploadDir
	case a.store.Engine() == store.SQLite:
		return filepath.Join(filepath.Dir(a.store.Path()), "uploads")
	}
	return filepath.Join("data", "uploads")
}

// secret returns the token key: IM_JWT_SECRET, or one generated once and
// kept in jwt.secret next to the SQLite file (mode 0600), or, on
// PostgreSQL, in the database, so that every server sharing it agrees.
func (a *App) secret(ctx context.Context) ([]byte, error) {
	if a.cfg.JWTSecret != "" {
		if len(a.cfg.JWTSecret) < auth.MinSecretLen {
			return nil, fmt.Errorf("IM_JWT_SECRET must be at least %d bytes", auth.MinSecretLen)
		}
		return []byte(a.cfg.JWTSecret), nil
	}
	if a.store.Engine() == store.SQLite {
		path := filepath.Join(dataDir(a.store), "jwt.secret")
		secret, created, err := auth.LoadOrCreateSecret(path)
		if err != nil {
			return nil, fmt.Errorf("token secret: %w", err)
		}
		if created {
			a.log.Warn("IM_JWT_SECRET is not set: generated a token secret and kept it", "file", path)
		}
		return secret, nil
	}
	s, err := a.store.SettingOrInit(ctx, "jwt_secret", auth.NewSecret())
	if err != nil {
		return nil, fmt.Errorf("token secret: %w", err)
	}
	a.log.Warn("IM_JWT_SECRET is not set: using the token secret kept in the database")
	return []byte(s), nil
}

func (a *App) bootstrapAdmin(ctx context.Context) error {
	pw, generated := a.cfg.AdminPassword, false
	if pw == "" {
		pw, generated = auth.NewSecret()[:24], true
	}
	created, err := a.domain.Accounts.EnsureAdmin(ctx, a.cfg.AdminUsername, pw)
	if err != nil {
		return err
	}
	switch {
	case created && generated:
		// Shown once, on the console only: it is not stored anywhere else.
		a.log.Warn("created the admin account with a generated password; set IM_ADMIN_PASSWORD to choose it; "+
			"if this password is lost, run: imserver admin reset-password",
			"username", a.cfg.AdminUsername, "password", pw)
	case created:
		a.log.Info("created the admin account", "username", a.cfg.AdminUsername)
	case !generated:
		// IM_ADMIN_PASSWORD is only used to create the account: say so if
		// it is not the account's password.
		if _, err := a.domain.Accounts.Login(ctx, a.cfg.AdminUsername, pw); errors.Is(err, im.ErrUnauthorized) {
			a.log.Warn("IM_ADMIN_PASSWORD is not the admin account's password: it only sets the password when the account is created; "+
				"to change it, run: imserver admin reset-password", "username", a.cfg.AdminUsername)
		}
	}
	return nil
}

// Start serves HTTP and MQTT. It returns once both accept connections.
func (a *App) Start() error {
	if err := a.broker.Serve(); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	go func() {
		err := a.http.Serve(a.httpLn)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		a.served <- err
	}()
	attrs := []any{"http", a.HTTPAddr(), "mqtt", a.MQTTAddr(), "database", describeDB(a.cfg.DatabaseURL, a.store)}
	if dir := dataDir(a.store); dir != "" {
		attrs = append(attrs, "data_dir", dir)
	}
	a.log.Info("imserver ready", attrs...)
	a.ready.Store(true) // after the log line: whoever sees /healthz answer can read it
	return nil
}

// HTTPAddr returns the address the REST API listens on.
func (a *App) HTTPAddr() string { return a.httpLn.Addr().String() }

// MQTTAddr returns the address of MQTT over TCP, or "".
func (a *App) MQTTAddr() string { return a.broker.TCPAddr() }

// Shutdown stops the server gracefully: no new HTTP requests or MQTT
// publishes are taken, requests and publishes being stored finish and are
// answered, the domain's background work finishes, clients are
// disconnected, and the database is closed.
func (a *App) Shutdown(ctx context.Context) error {
	a.ready.Store(false)
	var errs []error
	if err := a.http.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("http shutdown: %w", err))
	}
	if err := a.hook.Drain(ctx); err != nil {
		errs = append(errs, fmt.Errorf("drain publishes: %w", err))
	}
	if err := a.domain.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("domain: %w", err))
	}
	a.closeAll()
	a.log.Info("imserver stopped")
	return errors.Join(errs...)
}

func (a *App) closeAll() {
	a.closing.Do(a.close)
}

func (a *App) close() {
	if a.domain != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.domain.Close(ctx) // after Shutdown's, returns at once
		cancel()
	}
	if a.broker != nil {
		_ = a.broker.Close()
	}
	if a.hook != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.hook.Wait(ctx) // the pipelines end with their connections
		cancel()
	}
	if a.httpLn != nil {
		_ = a.httpLn.Close() // the guard's, which closes the listener
	}
	if a.store != nil {
		_ = a.store.Close()
	}
}

// Run starts the server and serves until ctx ends, then shuts down
// gracefully within shutdownTimeout.
func Run(ctx context.Context, cfg Config, shutdownTimeout time.Duration) error {
	a, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	if err := a.Start(); err != nil {
		a.closeAll()
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-a.served:
		a.closeAll()
		return fmt.Errorf("http server: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return a.Shutdown(sctx)
}

// Online reports whether a user has a live MQTT connection.
func (a *App) Online(uid int64) bool { return a.registry.Online(uid) }
