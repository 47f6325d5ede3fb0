// Command imserver is the instant-messaging and customer-service server:
// REST API, MQTT over TCP and WebSocket, and storage in SQLite or
// PostgreSQL, in one binary. Every setting is a flag with an environment
// variable of the same meaning; the flag wins. Run with -h for the list.
//
// Two commands help operators:
//
//	imserver healthcheck [--http ADDR]                 # exit 0 if /healthz answers 200 (Docker HEALTHCHECK)
//	imserver admin reset-password [--username admin]   # set a new admin password (IM_ADMIN_PASSWORD or generated)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imserver/imserver/app"
	"github.com/imserver/imserver/internal/throttle"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "imserver:", err)
		os.Exit(1)
	}
}

// run parses the configuration from args and the environment and serves
// until ctx ends, or runs one of the commands.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return healthcheck(ctx, args[1:], lookupEnv, stdout, stderr)
		case "admin":
			return admin(ctx, args[1:], lookupEnv, stdout, stderr)
		}
	}
	cfg, level, err := parseConfig(args, lookupEnv, stderr)
	if err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return app.Run(ctx, cfg, 30*time.Second)
}

func parseConfig(args []string, lookupEnv func(string) (string, bool), stderr io.Writer) (app.Config, slog.Level, error) {
	env := envOr(lookupEnv)
	var (
		def                                                                                                             = app.DefaultConfig()
		cfg                                                                                                             app.Config
		ttl, rate, burst, origins, lvl, uploadMax, connRate, pending, regRate, guestRate, maxSessions, resumeMax, queue string
	)
	fs := flag.NewFlagSet("imserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.HTTPAddr, "http", env("IM_HTTP_ADDR", def.HTTPAddr), "REST API and MQTT over WebSocket (/mqtt) address [IM_HTTP_ADDR]")
	mqttAddr, set := lookupEnv("IM_MQTT_ADDR") // set but empty disables TCP, as --mqtt "" does
	if !set {
		mqttAddr = def.MQTTAddr
	}
	fs.StringVar(&cfg.MQTTAddr, "mqtt", mqttAddr, "MQTT over TCP address; empty disables [IM_MQTT_ADDR]")
	fs.StringVar(&cfg.DatabaseURL, "db", env("IM_DATABASE_URL", def.DatabaseURL), "postgres://… or sqlite:PATH [IM_DATABASE_URL]")
	fs.StringVar(&ttl, "token-ttl", env("IM_TOKEN_TTL", def.TokenTTL.String()), "access token lifetime [IM_TOKEN_TTL]")
	fs.StringVar(&rate, "publish-rate", env("IM_PUBLISH_RATE", strconv.FormatFloat(def.PublishRate, 'g', -1, 64)), "messages per second one user may send; 0 = unlimited [IM_PUBLISH_RATE]")
	fs.StringVar(&burst, "publish-burst", env("IM_PUBLISH_BURST", strconv.Itoa(def.PublishBurst)), "burst allowed above publish-rate [IM_PUBLISH_BURST]")
	fs.StringVar(&origins, "ws-origins", env("IM_WS_ORIGINS", strings.Join(def.WSOrigins, ",")), "comma-separated browser origins allowed on /mqtt; * = all [IM_WS_ORIGINS]")
	fs.StringVar(&cfg.PublicURL, "public-url", env("IM_PUBLIC_URL", ""), "the URL users reach the server at, e.g. https://chat.example.com: uploads' URLs start with it (default: each request's), and its origin is allowed on /mqtt when --ws-origins is a list [IM_PUBLIC_URL]")
	fs.StringVar(&cfg.UploadDir, "upload-dir", env("IM_UPLOAD_DIR", ""), "directory of uploaded files (default: uploads next to the SQLite file, data/uploads with PostgreSQL) [IM_UPLOAD_DIR]")
	fs.StringVar(&uploadMax, "upload-max", env("IM_UPLOAD_MAX", strconv.FormatInt(def.UploadMax, 10)), "largest upload in bytes (suffixes KiB, MiB, GiB) [IM_UPLOAD_MAX]")
	fs.StringVar(&connRate, "conn-rate", env("IM_CONN_RATE", strconv.FormatFloat(def.ConnRate, 'g', -1, 64)), "new connections per second each listener (HTTP, MQTT over TCP) accepts; 0 = unlimited [IM_CONN_RATE]")
	fs.StringVar(&pending, "pending-per-ip", env("IM_PENDING_PER_IP", strconv.Itoa(def.PendingPerIP)), "connections one client IP may have open on a listener before its CONNECT (MQTT) or first request (HTTP) is answered; 0 = unlimited [IM_PENDING_PER_IP]")
	fs.StringVar(&regRate, "register-rate", env("IM_REGISTER_RATE", strconv.Itoa(def.RegisterRate)), "registrations per minute per client IP; 0 = unlimited [IM_REGISTER_RATE]")
	fs.StringVar(&guestRate, "guest-rate", env("IM_GUEST_RATE", strconv.Itoa(def.GuestRate)), "guest and visitor sign-ins per minute per client IP; 0 = unlimited [IM_GUEST_RATE]")
	fs.StringVar(&maxSessions, "max-sessions", env("IM_MAX_SESSIONS", strconv.Itoa(def.MaxSessions)), "MQTT connections plus parked persistent sessions one user may hold; the oldest parked session goes first; 0 = unlimited [IM_MAX_SESSIONS]")
	fs.StringVar(&resumeMax, "resume-max", env("IM_RESUME_MAX", strconv.Itoa(def.ResumeMax)), "missed messages of one conversation a reconnecting persistent MQTT session is sent at most, the newest, after a resync event [IM_RESUME_MAX]")
	fs.StringVar(&queue, "mqtt-queue", env("IM_MQTT_QUEUE", strconv.Itoa(int(def.MQTTPendingWrites))), "deliveries one MQTT connection may have queued for its socket at once; past it the client is disconnected (it catches up); each costs 8 bytes of every connection [IM_MQTT_QUEUE]")
	fs.StringVar(&cfg.TrustedProxies, "trusted-proxies", env("IM_TRUSTED_PROXIES", ""), "comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-For is believed [IM_TRUSTED_PROXIES]")
	fs.StringVar(&lvl, "log-level", env("IM_LOG_LEVEL", "info"), "debug, info, warn or error [IM_LOG_LEVEL]")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: imserver [flags]\n       imserver healthcheck [--http ADDR]\n       imserver admin reset-password [--username NAME]\n\n"+
			"Secrets are read from the environment only: IM_JWT_SECRET, IM_ADMIN_USERNAME, IM_ADMIN_PASSWORD.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, 0, err
	}
	if fs.NArg() > 0 {
		return cfg, 0, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.TokenTTL, err = time.ParseDuration(ttl); err != nil || cfg.TokenTTL <= 0 {
		return cfg, 0, fmt.Errorf("token-ttl %q: want a positive duration such as 24h", ttl)
	}
	if cfg.PublishRate, err = strconv.ParseFloat(rate, 64); err != nil || cfg.PublishRate < 0 {
		return cfg, 0, fmt.Errorf("publish-rate %q: want a number ≥ 0", rate)
	}
	if cfg.PublishBurst, err = strconv.Atoi(burst); err != nil || cfg.PublishBurst < 0 {
		return cfg, 0, fmt.Errorf("publish-burst %q: want an integer ≥ 0", burst)
	}
	if cfg.UploadMax, err = parseSize(uploadMax); err != nil || cfg.UploadMax <= 0 {
		return cfg, 0, fmt.Errorf("upload-max %q: want a positive size such as 10MiB", uploadMax)
	}
	if cfg.ConnRate, err = strconv.ParseFloat(connRate, 64); err != nil || cfg.ConnRate < 0 {
		return cfg, 0, fmt.Errorf("conn-rate %q: want a number ≥ 0", connRate)
	}
	if cfg.PendingPerIP, err = strconv.Atoi(pending); err != nil || cfg.PendingPerIP < 0 {
		return cfg, 0, fmt.Errorf("pending-per-ip %q: want an integer ≥ 0", pending)
	}
	if cfg.RegisterRate, err = strconv.Atoi(regRate); err != nil || cfg.RegisterRate < 0 {
		return cfg, 0, fmt.Errorf("register-rate %q: want an integer ≥ 0", regRate)
	}
	if cfg.GuestRate, err = strconv.Atoi(guestRate); err != nil || cfg.GuestRate < 0 {
		return cfg, 0, fmt.Errorf("guest-rate %q: want an integer ≥ 0", guestRate)
	}
	if cfg.MaxSessions, err = strconv.Atoi(maxSessions); err != nil || cfg.MaxSessions < 0 {
		return cfg, 0, fmt.Errorf("max-sessions %q: want an integer ≥ 0", maxSessions)
	}
	if cfg.ResumeMax, err = strconv.Atoi(resumeMax); err != nil || cfg.ResumeMax < 1 {
		return cfg, 0, fmt.Errorf("resume-max %q: want an integer ≥ 1", resumeMax)
	}
	n, err := strconv.ParseInt(queue, 10, 32)
	if err != nil || n < 16 {
		return cfg, 0, fmt.Errorf("mqtt-queue %q: want an integer ≥ 16", queue)
	}
	cfg.MQTTPendingWrites = int32(n)
	if _, err := throttle.ParseProxies(cfg.TrustedProxies); err != nil {
		return cfg, 0, fmt.Errorf("trusted-proxies: %w", err)
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, 0, fmt.Errorf("public-url %q: want an absolute http or https URL such as https://chat.example.com", cfg.PublicURL)
		}
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.WSOrigins = append(cfg.WSOrigins, o)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(lvl)); err != nil {
		return cfg, 0, fmt.Errorf("log-level %q: want debug, info, warn or error", lvl)
	}
	cfg.JWTSecret = env("IM_JWT_SECRET", "")
	cfg.AdminUsername = env("IM_ADMIN_USERNAME", def.AdminUsername)
	cfg.AdminPassword = env("IM_ADMIN_PASSWORD", "")
	return cfg, level, nil
}

// parseSize parses a size in bytes, with an optional suffix KiB, MiB or
// GiB.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if rest, ok := strings.CutSuffix(s, suffix); ok {
			s, mult = strings.TrimSpace(rest), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}
