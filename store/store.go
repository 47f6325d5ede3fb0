// Package store keeps the server's data in PostgreSQL or in an embedded
// SQLite file, behind the interfaces the domain (package im) declares. It
// owns the schema (embedded, versioned migrations applied by Open) and maps
// driver errors to the domain's errors in one place (errors.go).
package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // registers "postgres"
	_ "modernc.org/sqlite" // registers "sqlite"

	"github.com/imserver/imserver/im"
)

// Engines.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQL implementation of im.Store.
type Store struct {
	engine   string
	path     string                // SQLite: the database file
	w        *sqlx.DB              // writes and transactions (SQLite: a single connection)
	r        *sqlx.DB              // reads (SQLite: a pool of read-only connections; PostgreSQL: same as w)
	gate     chan struct{}         // SQLite: admits one writer at a time, in order (see lockWrite)
	appender *appender             // group commit of messages (batch.go)
	sql      appendSQL             // the append path's statements (append.go)
	stmts    map[string]*sqlx.Stmt // sql's statements, prepared at Open on the writer
	log      *slog.Logger
}

var _ im.Store = (*Store)(nil)

// Open connects to the database named by url and brings its schema up to
// date. url is "postgres://…", "postgresql://…" or "sqlite:PATH"; the
// SQLite file and its directory are created if missing.
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &Store{log: log}
	var err error
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		s.engine = Postgres
		s.w, err = sqlx.Open("postgres", withBinaryParameters(url))
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		s.w.SetMaxOpenConns(32)
		s.w.SetMaxIdleConns(32)
		s.w.SetConnMaxIdleTime(5 * time.Minute)
		s.r = s.w
	case strings.HasPrefix(url, "sqlite:"):
		s.engine = SQLite
		s.path = strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
		if s.path == "" || strings.Contains(s.path, "?") || s.path == ":memory:" {
			return nil, fmt.Errorf("sqlite url %q: want sqlite:PATH to a file", url)
		}
		if dir := filepath.Dir(s.path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("create database directory: %w", err)
			}
		}
		// WAL lets readers run beside the writer; synchronous=FULL makes
		// every commit durable before the client is acknowledged.
		dsn := "file:" + s.path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)"
		if s.w, err = sqlx.Open("sqlite", dsn+"&_txlock=immediate"); err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		// One writer connection: SQLite serialises writers anyway, and
		// queueing them in Go is cheaper than busy-waiting on the file lock.
		s.w.SetMaxOpenConns(1)
		s.w.SetConnMaxLifetime(0)
		s.gate = make(chan struct{}, 1)
		if s.r, err = sqlx.Open("sqlite", dsn+"&_pragma=query_only(1)"); err != nil {
			s.w.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		s.r.SetMaxOpenConns(8)
		s.r.SetMaxIdleConns(8)
	default:
		return nil, fmt.Errorf("database url %q: want postgres://…, postgresql://… or sqlite:PATH", redact(url))
	}
	if err := s.w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect to %s: %w", s.engine, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	// One worker: while its group commits, the next one fills. More
	// workers make smaller groups, and so more commits: on PostgreSQL 1
	// worker stored 2,586 msgs/s where 2 stored 1,638 and 4 stored 1,322
	// (BenchmarkSingleChatQoS1, 10 senders). SQLite has one writer anyway.
	s.appender = newAppender(s)
	if s.engine == SQLite {
		// It holds password hashes: private to the server's user.
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Chmod(s.path+suffix, 0o600)
		}
	}
	return s, nil
}

// withBinaryParameters turns on lib/pq's binary_parameters unless the URL
// sets it: a statement with parameters then costs one round trip to the
// server instead of two (Parse, Bind, Describe, Execute and Sync are sent
// together).
func withBinaryParameters(url string) string {
	if strings.Contains(url, "binary_parameters=") {
		return url
	}
	if strings.Contains(url, "?") {
		return url + "&binary_parameters=yes"
	}
	return url + "?binary_parameters=yes"
}

// redact hides a password in a database URL.
func redact(url string) string {
	if i := strings.Index(url, "@"); i >= 0 {
		if j := strings.Index(url, "://"); j >= 0 && j < i {
			return url[:j+3] + "…" + url[i:]
		}
	}
	return url
}

// Engine returns SQLite or Postgres.
func (s *Store) Engine() string { return s.engine }

// Path returns the SQLite database file, or "" on PostgreSQL.
func (s *Store) Path() string { return s.path }

// Close closes the database connections.
func (s *Store) Close() error {
	if s.appender != nil {
		s.appender.close()
	}
	for _, st := range s.stmts {
		_ = st.Close()
	}
	var err error
	if s.r != nil && s.r != s.w {
		err = s.r.Close()
	}
	if s.w != nil {
		if e := s.w.Close(); e != nil {
			err = e
		}
	}
	return err
}

// migrate applies the embedded migrations that the database lacks, each in
// its own transaction. On PostgreSQL an advisory lock keeps two servers
// starting at once from racing.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.w.Connx(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if s.engine == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7283164501)`); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(7283164501)`) //nolint:errcheck // released with the session anyway
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int64
	if err := conn.GetContext(ctx, &current, `SELECT COALESCE(MAX(version), 0) FROM schema_version`); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		name := filepath.Base(f)
		v, err := strconv.ParseInt(strings.SplitN(name, "_", 2)[0], 10, 64)
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", name)
		}
		if v <= current {
			continue
		}
		if engine, ok := migrationEngine(name); ok && engine != s.engine {
			continue // another engine's migration
		}
		ddl, err := migrations.ReadFile(f)
		if err != nil {
			return err
		}
		tx, err := conn.BeginTxx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, s.dialect(string(ddl))); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, s.w.Rebind(`INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`), v, time.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		s.log.Info("applied migration", "engine", s.engine, "migration", name)
	}
	return nil
}

// migrationEngine returns the engine a migration is for, from its name:
// NNNN_what.postgres.sql or NNNN_what.sqlite.sql; NNNN_what.sql is for
// both. An engine skips the versions that are not for it.
func migrationEngine(name string) (string, bool) {
	parts := strings.Split(strings.TrimSuffix(name, ".sql"), ".")
	if len(parts) == 2 && (parts[1] == Postgres || parts[1] == SQLite) {
		return parts[1], true
	}
	return "", false
}

// dialect rewrites the few spellings that differ between the engines.
func (s *Store) dialect(ddl string) string {
	id := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if s.engine == Postgres {
		id = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
	}
	return strings.ReplaceAll(ddl, "{{id}}", id)
}
