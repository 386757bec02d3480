package sqlitestore

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// writerAutoCheckpoint is the WAL size, in pages, at which the writer
// checkpoints by itself, in the commit that reaches it: a fallback for when
// the background checkpointer cannot keep up. SQLite's default is 1000.
const writerAutoCheckpoint = 20000

// checkpointInterval is the least time between two background checkpoints.
const checkpointInterval = 100 * time.Millisecond

// checkpointer copies the WAL back into the database file on its own
// connection and goroutine, so that the writer does not spend its commits on
// it (with SQLite's automatic checkpoints, every commit that takes the WAL
// past 1000 pages pays for copying them). It runs a PASSIVE checkpoint after
// writes, at most every checkpointInterval: one that waits for no reader or
// writer, and so never delays them.
type checkpointer struct {
	db   *sql.DB
	wake chan struct{}
	quit chan struct{}
	done sync.WaitGroup
}

func startCheckpointer(db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	c := &checkpointer{db: db, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	c.done.Go(c.loop)
	return c
}

// kick tells the checkpointer that a write committed. It never blocks.
func (c *checkpointer) kick() {
	if c == nil {
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.quit
		cancel()
	}()
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-c.quit:
			return
		case <-c.wake:
		}
		// Errors are not fatal: SQLITE_BUSY (another process checkpoints)
		// or I/O trouble that the writer will meet and report; the next
		// write tries again, and the writer's own checkpoint is the
		// fallback.
		var busy, log, done int
		_ = c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &done)
		t.Reset(checkpointInterval)
		select {
		case <-c.quit:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	close(c.quit)
	c.done.Wait()
	return c.db.Close()
}
