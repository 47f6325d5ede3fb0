package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/imserver/imserver/app"
)

// envOr returns a lookup of environment variables with a default for
// unset or empty ones.
func envOr(lookupEnv func(string) (string, bool)) func(name, def string) string {
	return func(name, def string) string {
		if v, ok := lookupEnv(name); ok && v != "" {
			return v
		}
		return def
	}
}

// healthcheck asks the server configured by --http (IM_HTTP_ADDR) for
// /healthz and fails unless it answers 200: the Docker HEALTHCHECK, which
// runs inside the container, so an unspecified host means loopback.
func healthcheck(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	env := envOr(lookupEnv)
	fs := flag.NewFlagSet("imserver healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http", env("IM_HTTP_ADDR", ":8080"), "the server's HTTP address [IM_HTTP_ADDR]")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("healthcheck: unexpected argument %q", fs.Arg(0))
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("healthcheck: http address %q: %w", *addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// admin runs an administration command against the database.
func admin(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "reset-password" {
		fmt.Fprintln(stderr, "Usage: imserver admin reset-password [--username NAME] [--db URL]")
		return errors.New("admin: the only command is reset-password")
	}
	env := envOr(lookupEnv)
	fs := flag.NewFlagSet("imserver admin reset-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", env("IM_DATABASE_URL", "sqlite:data/im.db"), "postgres://… or sqlite:PATH [IM_DATABASE_URL]")
	username := fs.String("username", env("IM_ADMIN_USERNAME", "admin"), "the admin account [IM_ADMIN_USERNAME]")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: imserver admin reset-password [--username NAME] [--db URL]\n\n"+
			"Sets the admin account's password to IM_ADMIN_PASSWORD, or to a generated one that is printed.\n"+
			"Run it against the server's database (the same --db or IM_DATABASE_URL).\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("reset-password: unexpected argument %q", fs.Arg(0))
	}
	chosen := env("IM_ADMIN_PASSWORD", "")
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pw, err := app.ResetAdminPassword(ctx, *db, *username, chosen, log)
	if err != nil {
		return fmt.Errorf("reset-password: %w", err)
	}
	if chosen != "" {
		fmt.Fprintf(stdout, "the password of %s is now the one in IM_ADMIN_PASSWORD\n", *username)
	} else {
		fmt.Fprintf(stdout, "new password for %s: %s\n", *username, pw)
	}
	return nil
}
