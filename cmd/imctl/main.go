// Command imctl is a command-line client of imserver, the quickest way to
// try a server: register and log in, send messages, watch them arrive,
// read history, use rooms and customer service. It remembers the server
// and the token in the user's config directory (imctl/config.json, mode
// 0600).
//
//	imctl --server http://127.0.0.1:8080 register alice
//	imctl send 3 hello bob            # to the user with uid 3
//	imctl listen                      # print messages as they arrive; --json for scripts
//	imctl history 3
//
// Run imctl help for every command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], env{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imctl:", err)
		os.Exit(1)
	}
}

// env is the outside world of a run, so that tests can supply their own.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}
