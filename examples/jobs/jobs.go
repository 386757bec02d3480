package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/otelop/otelop/otelop"
)

// Job is a record of the example's job repository.
type Job struct {
	ID        string    `json:"id" bson:"_id"`
	Title     string    `json:"title" bson:"title"`
	Priority  int       `json:"priority" bson:"priority"`
	Status    string    `json:"status" bson:"status"` // queued, running, done, failed, deleted
	CreatedAt time.Time `json:"created_at" bson:"created_at"`
	UpdatedAt time.Time `json:"updated_at" bson:"updated_at"`
}

// Deleted jobs are kept, marked "deleted", so that the result references of
// the TaskRuns that touched them still resolve.
const statusDeleted = "deleted"

// ErrJobNotFound is matched by the error for an unknown job id.
var ErrJobNotFound = errors.New("job not found")

type notFoundError struct{ id string }

func (e notFoundError) Error() string     { return fmt.Sprintf("job %q not found", e.id) }
func (e notFoundError) Is(t error) bool   { return t == ErrJobNotFound }
func (e notFoundError) ErrorType() string { return "not_found" }

type deletedError struct{ id string }

func (e deletedError) Error() string     { return fmt.Sprintf("job %q is deleted", e.id) }
func (e deletedError) ErrorType() string { return "conflict" }

// Jobs is where the example keeps its jobs: beside the TaskRuns, in the
// same database (a jobs table in SQLite, a jobs collection in MongoDB), or
// in memory.
type Jobs interface {
	// Insert stores a new job.
	Insert(ctx context.Context, j Job) error
	// Get returns a job, deleted or not, or an error matching ErrJobNotFound.
	Get(ctx context.Context, id string) (Job, error)
	// Update replaces a stored job.
	Update(ctx context.Context, j Job) error
	// Queued returns up to limit queued jobs, highest priority first, then
	// oldest first.
	Queued(ctx context.Context, limit int) ([]Job, error)
}

// newJobID returns a short random id such as "job-3f9a0c1b7d".
func newJobID() string {
	return fmt.Sprintf("job-%010x", rand.Uint64()&0xffffffffff)
}

// memJobs keeps jobs in memory.
type memJobs struct {
	mu   sync.Mutex
	jobs map[string]Job
}

func newMemJobs() *memJobs { return &memJobs{jobs: map[string]Job{}} }

func (m *memJobs) Insert(_ context.Context, j Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.jobs[j.ID]; ok {
		return fmt.Errorf("job %q exists", j.ID)
	}
	m.jobs[j.ID] = j
	return nil
}

func (m *memJobs) Get(_ context.Context, id string) (Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	j, ok := m.jobs[id]
	if !ok {
		return Job{}, notFoundError{id}
	}
	return j, nil
}

func (m *memJobs) Update(_ context.Context, j Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.jobs[j.ID]; !ok {
		return notFoundError{j.ID}
	}
	m.jobs[j.ID] = j
	return nil
}

func (m *memJobs) Queued(_ context.Context, limit int) ([]Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var js []Job
	for _, j := range m.jobs {
		if j.Status == "queued" {
			js = append(js, j)
		}
	}
	sortQueued(js)
	if limit > 0 && len(js) > limit {
		js = js[:limit]
	}
	return js, nil
}

func sortQueued(js []Job) {
	sort.Slice(js, func(a, b int) bool {
		if js[a].Priority != js[b].Priority {
			return js[a].Priority > js[b].Priority
		}
		if !js[a].CreatedAt.Equal(js[b].CreatedAt) {
			return js[a].CreatedAt.Before(js[b].CreatedAt)
		}
		return js[a].ID < js[b].ID
	})
}

// Operations of the example, bound to a repository.
type Operations struct {
	CreateJobsBatch *otelop.Op[CreateJobsBatchInput, CreateJobsBatchOutput]
	UpdateJob       *otelop.Op[UpdateJobInput, UpdateJobOutput]
	BulkDeleteJobs  *otelop.Op[BulkDeleteJobsInput, BulkDeleteJobsOutput]
	ProcessJobs     *otelop.Op[ProcessJobsInput, ProcessJobsOutput]
}

// NewJobSpec is one job to create.
type NewJobSpec struct {
	Title    string `json:"title" validate:"required,max=200" jsonschema:"description=Job title"`
	Priority int    `json:"priority,omitempty" validate:"gte=0,lte=10" jsonschema:"minimum=0,maximum=10"`
}

// CreateJobsBatchInput creates several jobs at once.
type CreateJobsBatchInput struct {
	otelop.Request
	Jobs []NewJobSpec `json:"jobs" validate:"required,min=1,max=100,dive"`
}

// CreateJobsBatchOutput lists the created jobs; JobIDs are the result refs.
type CreateJobsBatchOutput struct {
	otelop.Receipt
	JobIDs  []string `json:"job_ids" otelop:"ref=jobs"`
	Created int      `json:"created"`
}

// UpdateJobInput changes a job's title, priority or status.
type UpdateJobInput struct {
	otelop.Request
	JobID    string  `json:"job_id" validate:"required"`
	Title    *string `json:"title,omitempty" validate:"omitempty,min=1,max=200"`
	Priority *int    `json:"priority,omitempty" validate:"omitempty,gte=0,lte=10"`
	Status   string  `json:"status,omitempty" validate:"omitempty,oneof=queued running done failed"`
}

// UpdateJobOutput names the updated job and the fields that changed.
type UpdateJobOutput struct {
	otelop.Receipt
	JobID   string   `json:"job_id" otelop:"ref=jobs"`
	Changed []string `json:"changed"`
}

// BulkDeleteJobsInput deletes several jobs; with dry_run nothing changes.
type BulkDeleteJobsInput struct {
	otelop.Request
	JobIDs []string `json:"job_ids" validate:"required,min=1,max=1000,dive,required"`
}

// BulkDeleteJobsOutput lists what was (or would be) deleted and per-item
// failures.
type BulkDeleteJobsOutput struct {
	otelop.Receipt
	Deleted []string           `json:"deleted" otelop:"ref=jobs"`
	Errors  []otelop.ItemError `json:"errors,omitempty"`
}

// ItemErrors feeds the TaskRun's error_list.
func (o BulkDeleteJobsOutput) ItemErrors() []otelop.ItemError { return o.Errors }

// ProcessJobsInput runs the queued jobs, highest priority first.
type ProcessJobsInput struct {
	otelop.Request
	Limit int `json:"limit,omitempty" validate:"gte=0,lte=1000"`
}

// ProcessJobsOutput lists the processed jobs.
type ProcessJobsOutput struct {
	otelop.Receipt
	Processed []string `json:"processed" otelop:"ref=jobs"`
	Failed    []string `json:"failed,omitempty"`
}

// DefineOperations defines the example's four operations over repo.
func DefineOperations(jobs Jobs, opts ...otelop.Option) (*Operations, error) {
	var (
		ops Operations
		err error
	)
	ops.CreateJobsBatch, err = otelop.New(otelop.Spec{
		Name:        "create_jobs_batch",
		Description: "Create a batch of jobs; the new job ids are the result references.",
		Category:    "jobs",
		Stage:       "ingest",
		Tags:        []string{"jobs", "batch", "write"},
		Permissions: []string{"jobs:write"},
		ModelsOut:   []string{"Job"},
		Observed:    true,
	}, func(ctx context.Context, in CreateJobsBatchInput) (CreateJobsBatchOutput, error) {
		var out CreateJobsBatchOutput
		now := time.Now().UTC().Truncate(time.Millisecond)
		for _, spec := range in.Jobs {
			if in.DryRun {
				out.Created++
				continue
			}
			j := Job{ID: newJobID(), Title: spec.Title, Priority: spec.Priority, Status: "queued", CreatedAt: now, UpdatedAt: now}
			if err := jobs.Insert(ctx, j); err != nil {
				return out, err
			}
			out.JobIDs = append(out.JobIDs, j.ID)
			out.Created++
		}
		otelop.Log(ctx, slog.LevelInfo, "jobs created", "count", out.Created, "dry_run", in.DryRun)
		return out, nil
	}, opts...)
	if err != nil {
		return nil, err
	}

	ops.UpdateJob, err = otelop.New(otelop.Spec{
		Name:        "update_job",
		Description: "Update a job's title, priority or status.",
		Category:    "jobs",
		Stage:       "manage",
		Tags:        []string{"jobs", "write"},
		Permissions: []string{"jobs:write"},
		ModelsIn:    []string{"Job"},
		ModelsOut:   []string{"Job"},
		Observed:    true,
	}, func(ctx context.Context, in UpdateJobInput) (UpdateJobOutput, error) {
		var out UpdateJobOutput
		j, err := jobs.Get(ctx, in.JobID)
		if err != nil {
			return out, err
		}
		if j.Status == statusDeleted {
			return out, deletedError{j.ID}
		}
		out.JobID = j.ID
		if in.Title != nil && *in.Title != j.Title {
			j.Title = *in.Title
			out.Changed = append(out.Changed, "title")
		}
		if in.Priority != nil && *in.Priority != j.Priority {
			j.Priority = *in.Priority
			out.Changed = append(out.Changed, "priority")
		}
		if in.Status != "" && in.Status != j.Status {
			j.Status = in.Status
			out.Changed = append(out.Changed, "status")
		}
		if !in.DryRun && len(out.Changed) > 0 {
			j.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
			if err := jobs.Update(ctx, j); err != nil {
				return out, err
			}
		}
		return out, nil
	}, opts...)
	if err != nil {
		return nil, err
	}

	ops.BulkDeleteJobs, err = otelop.New(otelop.Spec{
		Name:        "bulk_delete_jobs",
		Description: "Delete many jobs. Missing jobs are reported per item; dry_run deletes nothing.",
		Category:    "jobs",
		Stage:       "manage",
		Tags:        []string{"jobs", "bulk", "destructive"},
		Permissions: []string{"jobs:delete"},
		ModelsIn:    []string{"Job"},
		Observed:    true,
	}, func(ctx context.Context, in BulkDeleteJobsInput) (BulkDeleteJobsOutput, error) {
		var out BulkDeleteJobsOutput
		for _, id := range slices.Compact(slices.Sorted(slices.Values(in.JobIDs))) {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			j, err := jobs.Get(ctx, id)
			if err == nil && j.Status == statusDeleted {
				err = deletedError{id}
			}
			if err == nil && !in.DryRun {
				j.Status = statusDeleted
				j.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
				err = jobs.Update(ctx, j)
			}
			if err != nil {
				out.Errors = append(out.Errors, otelop.ItemError{Item: id, Error: err.Error()})
				continue
			}
			if in.Verbose {
				verb := "deleted"
				if in.DryRun {
					verb = "would delete"
				}
				otelop.Log(ctx, slog.LevelInfo, verb+" "+id, "job_id", id)
			}
			out.Deleted = append(out.Deleted, id)
		}
		return out, nil
	}, opts...)
	if err != nil {
		return nil, err
	}

	ops.ProcessJobs, err = otelop.New(otelop.Spec{
		Name:        "process_jobs",
		Description: "Run queued jobs, highest priority first, marking each done or failed.",
		Category:    "processing",
		Stage:       "process",
		Tags:        []string{"jobs", "worker"},
		Permissions: []string{"jobs:run"},
		ModelsIn:    []string{"Job"},
		ModelsOut:   []string{"Job"},
		Observed:    true,
	}, func(ctx context.Context, in ProcessJobsInput) (ProcessJobsOutput, error) {
		var out ProcessJobsOutput
		queued, err := jobs.Queued(ctx, in.Limit)
		if err != nil {
			return out, err
		}
		for _, j := range queued {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			if in.DryRun {
				out.Processed = append(out.Processed, j.ID)
				continue
			}
			j.Status = "done"
			if j.Priority >= 10 {
				j.Status = "failed" // the example's stand-in for a job that breaks
				out.Failed = append(out.Failed, j.ID)
				otelop.Log(ctx, slog.LevelWarn, "job failed", "job_id", j.ID)
			}
			j.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
			if err := jobs.Update(ctx, j); err != nil {
				return out, err
			}
			out.Processed = append(out.Processed, j.ID)
		}
		return out, nil
	}, opts...)
	if err != nil {
		return nil, err
	}
	return &ops, nil
}
