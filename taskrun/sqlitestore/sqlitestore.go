package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/otelop/otelop/taskrun"
)

// ErrClosed is matched by the errors of Write, Get and Find after Close.
var ErrClosed = errors.New("sqlitestore: store is closed")

// ErrReadOnly is matched by the error of Write on a store opened with
// [WithReadOnly].
var ErrReadOnly = errors.New("sqlitestore: store is read-only")

var _ taskrun.Store = (*Store)(nil)

// Option configures [Open].
type Option func(*config)

type config struct {
	busyTimeout time.Duration
	readOnly    bool
	fullSync    bool
	readers     int
	cacheKiB    int
}

// WithBusyTimeout sets how long a statement waits for a lock that another
// connection (another process, or the application's writes through
// [Store.DB]) holds before it fails with SQLITE_BUSY. The default is 5s;
// a context deadline ends the wait earlier.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// WithReadOnly opens the file read-only, for tools that only query: the file
// must exist and hold a TaskRun store, nothing is created or migrated, Write
// fails with [ErrReadOnly], and the database file is never modified (SQLite
// may create the -wal and -shm files of WAL mode next to it).
func WithReadOnly() Option {
	return func(c *config) { c.readOnly = true }
}

// WithFullSync makes every committed Write durable across a power loss
// (PRAGMA synchronous=FULL), at the price of an fsync per transaction. The
// default, synchronous=NORMAL, is durable across a crash of the process.
func WithFullSync() Option {
	return func(c *config) { c.fullSync = true }
}

// WithMaxReaders sets the number of connections that serve Get, Find and
// [Store.DB] concurrently. The default is max(4, GOMAXPROCS).
func WithMaxReaders(n int) Option {
	return func(c *config) { c.readers = n }
}

// WithCacheSize sets the page cache of each connection, in KiB. The default
// is 8192 (8 MiB) for the writer, and SQLite's default (2000 KiB) for the
// readers, unless set here.
func WithCacheSize(kib int) Option {
	return func(c *config) { c.cacheKiB = kib }
}

// Store is a [taskrun.Store] in one SQLite file. It is safe for concurrent
// use. Create it with [Open].
type Store struct {
	path     string
	readOnly bool
	closed   atomic.Bool

	// w is the writer: one connection, BEGIN IMMEDIATE. It and its
	// statements are nil when the store is read-only.
	w              *sql.DB
	upsert, update *sql.Stmt
	delTag, delRef *sql.Stmt
	bulk           map[bulkKey]*sql.Stmt // see bulkSQL

	// ckpt checkpoints the WAL in the background (see checkpointer).
	ckpt *checkpointer

	// r serves Get, Find and DB: several connections.
	r   *sql.DB
	get *sql.Stmt
}

// Open opens the SQLite file at path as a TaskRun store, creating the file
// (but not its directory) and the schema when they are missing. The file is
// put in WAL mode. path is a file system path, not a URI; ":memory:" is
// refused (use package memstore for a store in memory).
//
// Defaults: busy timeout 5s ([WithBusyTimeout]), synchronous=NORMAL
// ([WithFullSync]), max(4, GOMAXPROCS) reader connections
// ([WithMaxReaders]), read-write ([WithReadOnly]).
//
// Open fails with a message naming the path when the path is a directory,
// its directory does not exist, the file is not an SQLite database, or it
// holds a TaskRun schema newer than this release knows. The caller closes
// the store.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{busyTimeout: 5 * time.Second, readers: max(4, runtime.GOMAXPROCS(0))}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.readers < 1 {
		cfg.readers = 1
	}
	if path == "" || path == ":memory:" || path == "file::memory:" {
		return nil, fmt.Errorf("sqlitestore: open %q: need the path of a file (for a store in memory, use package memstore)", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %q: %w", path, err)
	}
	if err := checkPath(abs, cfg.readOnly); err != nil {
		return nil, fmt.Errorf("sqlitestore: open %q: %w", path, err)
	}

	s := &Store{path: abs, readOnly: cfg.readOnly}
	if err := s.open(ctx, cfg); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("sqlitestore: open %q: %w", path, err)
	}
	return s, nil
}

// checkPath turns the usual mistakes into clear errors before SQLite
// reports them as "unable to open database file".
func checkPath(path string, readOnly bool) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return errors.New("is a directory, not a database file")
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return err
	case readOnly:
		return fmt.Errorf("no such file (a read-only store is not created): %w", fs.ErrNotExist)
	}
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("directory %s does not exist: %w", dir, fs.ErrNotExist)
	case err != nil:
		return err
	case !di.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// dsn returns the modernc.org/sqlite data source name of path: a file: URI
// (so that any character of the path is escaped) with the connection's
// PRAGMAs.
func dsn(path string, pragmas []string, params url.Values) string {
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	if u.Path != "" && u.Path[0] != '/' { // a Windows path: file:///C:/...
		u.Path = "/" + u.Path
	}
	return u.String()
}

func (s *Store) open(ctx context.Context, cfg config) error {
	busy := fmt.Sprintf("busy_timeout(%d)", cfg.busyTimeout.Milliseconds())
	syncMode := "synchronous(NORMAL)"
	if cfg.fullSync {
		syncMode = "synchronous(FULL)"
	}
	writerCache, readerCache := 8192, 0
	if cfg.cacheKiB > 0 {
		writerCache, readerCache = cfg.cacheKiB, cfg.cacheKiB
	}

	if !cfg.readOnly {
		// journal_mode is persistent: setting it on the writer, before any
		// reader connects, puts the file in WAL mode for every connection.
		// The writer checkpoints only when the background checkpointer
		// falls far behind (see checkpointer).
		w, err := sql.Open("sqlite", dsn(s.path,
			[]string{busy, "journal_mode(WAL)", syncMode, "temp_store(MEMORY)",
				"cache_size(-" + strconv.Itoa(writerCache) + ")", "wal_autocheckpoint(" + strconv.Itoa(writerAutoCheckpoint) + ")"},
			url.Values{"_txlock": {"immediate"}}))
		if err != nil {
			return err
		}
		s.w = w
		w.SetMaxOpenConns(1)
		w.SetMaxIdleConns(1)
		w.SetConnMaxIdleTime(0)
		w.SetConnMaxLifetime(0)
		if err := migrate(ctx, w); err != nil {
			return err
		}
		for _, p := range []struct {
			st  **sql.Stmt
			sql string
		}{
			{&s.upsert, upsertSQL},
			{&s.update, updateSQL},
			{&s.delTag, `DELETE FROM taskrun_tags WHERE tag = ? AND started_at = ? AND run_id = ?`},
			{&s.delRef, `DELETE FROM taskrun_refs WHERE document_id = ? AND collection = ? AND started_at = ? AND run_id = ?`},
		} {
			if *p.st, err = w.PrepareContext(ctx, p.sql); err != nil {
				return fmt.Errorf("preparing %s: %w", firstLine(p.sql), err)
			}
		}
		if err := s.prepareBulk(ctx); err != nil {
			return err
		}
		c, err := sql.Open("sqlite", dsn(s.path, []string{busy, syncMode}, nil))
		if err != nil {
			return err
		}
		s.ckpt = startCheckpointer(c)
	}

	pragmas := []string{busy}
	params := url.Values{}
	if cfg.readOnly {
		params.Set("mode", "ro")
		pragmas = append(pragmas, "query_only(1)")
	} else {
		// The application may write through DB: make its transactions take
		// the write lock up front, and its commits as durable as ours.
		params.Set("_txlock", "immediate")
		pragmas = append(pragmas, syncMode)
	}
	if readerCache > 0 {
		pragmas = append(pragmas, "cache_size(-"+strconv.Itoa(readerCache)+")")
	}
	r, err := sql.Open("sqlite", dsn(s.path, pragmas, params))
	if err != nil {
		return err
	}
	s.r = r
	r.SetMaxOpenConns(cfg.readers)
	r.SetMaxIdleConns(cfg.readers)
	r.SetConnMaxIdleTime(0)
	r.SetConnMaxLifetime(0)
	if cfg.readOnly {
		if err := checkSchema(ctx, r); err != nil {
			return err
		}
	}
	if s.get, err = r.PrepareContext(ctx, `SELECT doc FROM taskruns WHERE id = ?`); err != nil {
		return err
	}
	return nil
}

// DB returns the database of the store's file, for an application that keeps
// its own tables next to the TaskRuns (the store owns the tables taskruns,
// taskrun_tags, taskrun_refs and taskrun_meta: read them, and delete old
// runs from taskruns if you must, but do not insert or update them). It is
// the pool that Get and Find use; its transactions begin IMMEDIATE, taking
// the write lock up front, so that they wait for the store's writes rather
// than fail with SQLITE_BUSY (read-only transactions, sql.TxOptions.ReadOnly,
// begin DEFERRED). A write transaction held open on it delays TaskRun
// writes. On a store opened with [WithReadOnly] it is read-only too. Do not
// close it: Close does.
func (s *Store) DB() *sql.DB { return s.r }

// Path returns the absolute path of the store's file.
func (s *Store) Path() string { return s.path }

// Close closes the store's connections after the statements in progress
// end; later calls of Write, Get and Find fail with [ErrClosed]. Closing
// twice is not an error. Close runs PRAGMA optimize first, so that the query
// planner has fresh statistics when the file is opened again.
func (s *Store) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.w != nil {
		// Best effort: statistics only.
		_, _ = s.w.ExecContext(ctx, `PRAGMA optimize`)
	}
	return s.closeAll()
}

func (s *Store) closeAll() error {
	var errs []error
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.close())
	}
	stmts := []*sql.Stmt{s.upsert, s.update, s.delTag, s.delRef, s.get}
	for _, st := range s.bulk {
		stmts = append(stmts, st)
	}
	for _, st := range stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	for _, db := range []*sql.DB{s.w, s.r} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlitestore: close %s: %w", s.path, err)
	}
	return nil
}

// usable returns the error of a call that cannot run: ctx done, or the
// store closed.
func (s *Store) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}
