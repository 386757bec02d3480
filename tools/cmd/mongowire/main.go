// Command mongowire runs a MongoDB wire-protocol server for tests: FerretDB
// v1.24.2 embedded, backed by SQLite files in a directory (or by
// PostgreSQL).
//
// It is a test server, not a MongoDB: it is slow for updates (FerretDB scans)
// and deadlocks on one update or bulk command carrying about 100 or more
// updates, so clients must keep their commands at 50 writes or fewer (see
// mongostore.WithMaxWritesPerCommand).
//
// Usage:
//
//	mongowire -listen 127.0.0.1:27017 -data ./data
//
// Port 0 picks a free port. When it accepts connections it prints its URI
// on stdout as a line
//
//	ready mongodb://127.0.0.1:27017/
//
// and, with -uri-file, writes the URI to that file too (atomically, so a
// script can wait for the file). It stops cleanly on SIGINT and SIGTERM,
// removing the URI file; the data directory stays.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mongowire:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		listen   = flag.String("listen", "127.0.0.1:27017", "TCP `address` to listen on (port 0 picks a free port)")
		data     = flag.String("data", "", "`directory` of the SQLite databases (created if missing; required with -handler sqlite)")
		handler  = flag.String("handler", "sqlite", "FerretDB backend: sqlite or postgresql")
		pgURL    = flag.String("postgresql-url", "", "PostgreSQL connection `string` for -handler postgresql")
		uriFile  = flag.String("uri-file", "", "write the mongodb:// URI to this `file` once ready")
		logLevel = flag.String("log-level", "error", "log `level`: debug, info, warn or error (FerretDB logs every error reply at warn)")
	)
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mongowire [flags]\n\nRuns an embedded FerretDB (MongoDB wire protocol) for tests.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("-listen %q: %w", *listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: want a loopback address such as 127.0.0.1:27017 (this is a test server without authentication)", *listen)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Logger:   logger,
		Handler:  *handler,
	}
	switch *handler {
	case "sqlite":
		if *data == "" {
			return errors.New("-data is required with -handler sqlite")
		}
		dir, err := filepath.Abs(*data)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		// FerretDB wants a file: URI naming a directory, with a trailing slash.
		cfg.SQLiteURL = (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir) + "/"}).String()
	case "postgresql":
		if *pgURL == "" {
			return errors.New("-postgresql-url is required with -handler postgresql")
		}
		cfg.PostgreSQLURL = *pgURL
	default:
		return fmt.Errorf("-handler %q: want sqlite or postgresql", *handler)
	}

	f, err := ferretdb.New(cfg)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	// MongoDBURI blocks until the listener is bound; then wait until it
	// really accepts connections before announcing it.
	uri := f.MongoDBURI()
	u, err := url.Parse(uri)
	if err != nil {
		stop()
		<-done
		return fmt.Errorf("FerretDB returned an invalid URI %q: %w", uri, err)
	}
	if err := waitAccepting(ctx, u.Host, 30*time.Second); err != nil {
		stop()
		<-done
		return err
	}
	if *uriFile != "" {
		if err := writeAtomic(*uriFile, uri+"\n"); err != nil {
			stop()
			<-done
			return err
		}
	}
	fmt.Printf("ready %s\n", uri)

	err = <-done
	if *uriFile != "" {
		_ = os.Remove(*uriFile)
	}
	return err
}

// writeAtomic writes the file through a rename, so that a reader never
// sees it half written.
func writeAtomic(path, content string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// waitAccepting dials addr until a TCP connection succeeds.
func waitAccepting(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("listener %s does not accept connections after %s: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
