package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/memstore"
	"github.com/otelop/otelop/taskrun/mongostore"
	"github.com/otelop/otelop/taskrun/sqlitestore"
)

// jobsFor keeps the jobs in the same database as the TaskRuns.
func jobsFor(ctx context.Context, st taskrun.Store) (Jobs, error) {
	switch s := st.(type) {
	case *sqlitestore.Store:
		return newSQLJobs(ctx, s.DB())
	case *mongostore.Store:
		return newMongoJobs(ctx, s.Database().Collection("jobs"))
	case *memstore.Store:
		return newMemJobs(), nil
	}
	return nil, fmt.Errorf("no job repository for a %T store", st)
}

// sqlJobs keeps jobs in a table of the SQLite store's file.
type sqlJobs struct{ db *sql.DB }

func newSQLJobs(ctx context.Context, db *sql.DB) (*sqlJobs, error) {
	_, err := db.ExecContext(ctx, `
CREATE TABLE IF NOT EXISTS jobs (
	id         TEXT PRIMARY KEY,
	title      TEXT NOT NULL,
	priority   INTEGER NOT NULL,
	status     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(status, priority DESC, created_at);`)
	if err != nil {
		return nil, fmt.Errorf("creating the jobs table: %w", err)
	}
	return &sqlJobs{db: db}, nil
}

func (s *sqlJobs) Insert(ctx context.Context, j Job) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs(id, title, priority, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		j.ID, j.Title, j.Priority, j.Status, j.CreatedAt.UnixMilli(), j.UpdatedAt.UnixMilli())
	return err
}

func (s *sqlJobs) Get(ctx context.Context, id string) (Job, error) {
	row := s.db.QueryRowContext(ctx, `SELECT id, title, priority, status, created_at, updated_at FROM jobs WHERE id = ?`, id)
	j, err := scanJob(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, notFoundError{id}
	}
	return j, err
}

func (s *sqlJobs) Update(ctx context.Context, j Job) error {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET title = ?, priority = ?, status = ?, updated_at = ? WHERE id = ?`,
		j.Title, j.Priority, j.Status, j.UpdatedAt.UnixMilli(), j.ID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return notFoundError{j.ID}
	}
	return nil
}

func (s *sqlJobs) Queued(ctx context.Context, limit int) ([]Job, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, title, priority, status, created_at, updated_at FROM jobs
WHERE status = 'queued' ORDER BY priority DESC, created_at, id LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var js []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		js = append(js, j)
	}
	return js, rows.Err()
}

func scanJob(row interface{ Scan(...any) error }) (Job, error) {
	var (
		j                  Job
		created, updatedAt int64
	)
	if err := row.Scan(&j.ID, &j.Title, &j.Priority, &j.Status, &created, &updatedAt); err != nil {
		return Job{}, err
	}
	j.CreatedAt, j.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updatedAt).UTC()
	return j, nil
}

// mongoJobs keeps jobs in a collection of the MongoDB store's database.
type mongoJobs struct{ c *mongo.Collection }

func newMongoJobs(ctx context.Context, c *mongo.Collection) (*mongoJobs, error) {
	_, err := c.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "status", Value: 1}, {Key: "priority", Value: -1}, {Key: "created_at", Value: 1}}})
	if err != nil {
		return nil, fmt.Errorf("creating the jobs index: %w", err)
	}
	return &mongoJobs{c: c}, nil
}

func (m *mongoJobs) Insert(ctx context.Context, j Job) error {
	_, err := m.c.InsertOne(ctx, j)
	return err
}

func (m *mongoJobs) Get(ctx context.Context, id string) (Job, error) {
	var j Job
	err := m.c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&j)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return Job{}, notFoundError{id}
	}
	j.CreatedAt, j.UpdatedAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC()
	return j, err
}

func (m *mongoJobs) Update(ctx context.Context, j Job) error {
	res, err := m.c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: j.ID}}, j)
	if err != nil {
		return err
	}
	if res.MatchedCount == 0 {
		return notFoundError{j.ID}
	}
	return nil
}

func (m *mongoJobs) Queued(ctx context.Context, limit int) ([]Job, error) {
	opts := options.Find().SetSort(bson.D{{Key: "priority", Value: -1}, {Key: "created_at", Value: 1}, {Key: "_id", Value: 1}})
	if limit > 0 {
		opts.SetLimit(int64(limit))
	}
	cur, err := m.c.Find(ctx, bson.D{{Key: "status", Value: "queued"}}, opts)
	if err != nil {
		return nil, err
	}
	var js []Job
	if err := cur.All(ctx, &js); err != nil {
		return nil, err
	}
	for i := range js {
		js[i].CreatedAt, js[i].UpdatedAt = js[i].CreatedAt.UTC(), js[i].UpdatedAt.UTC()
	}
	return js, nil
}
