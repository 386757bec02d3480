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
	db     *sql.DB
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func startCheckpointer(db *sql.DB) *checkpointer {
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	c := &checkpointer{db: db, wake: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
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
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		}
		// Errors are not fatal: SQLITE_BUSY (another process checkpoints)
		// or I/O trouble that the writer meets and reports too. The next
		// write tries again, and the writer's own checkpoint at
		// writerAutoCheckpoint pages is the fallback.
		var busy, log, copied int
		_ = c.db.QueryRowContext(c.ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &copied)
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(checkpointInterval):
		}
	}
}

// close stops the checkpointer, interrupting a checkpoint in progress, and
// closes its connection.
func (c *checkpointer) close() error {
	c.cancel()
	c.done.Wait()
	return c.db.Close()
}
