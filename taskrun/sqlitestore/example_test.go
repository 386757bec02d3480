package sqlitestore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/otelop/otelop/otelop"
	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/sqlitestore"
)

func Example() {
	dir, err := os.MkdirTemp("", "otelop-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, filepath.Join(dir, "otelop.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close(ctx)

	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	finished := start.Add(40 * time.Millisecond)
	runs := []taskrun.TaskRun{
		{ID: "run-1", OperationName: "update_job", Status: taskrun.StatusSuccess, StartedAt: start,
			FinishedAt: &finished, Actor: taskrun.Actor{UserID: "alice", Channel: "api"},
			ResultRefs: []otelop.Ref{{Collection: "jobs", DocumentID: "j1"}}},
		{ID: "run-2", OperationName: "update_job", Status: taskrun.StatusFailed, StartedAt: start.Add(time.Second),
			FinishedAt: &finished, Actor: taskrun.Actor{UserID: "bob", Channel: "cli"}, ErrorMessage: "job j2 is locked"},
		{ID: "run-3", OperationName: "update_job", Status: taskrun.StatusRunning, StartedAt: start.Add(2 * time.Second),
			Actor: taskrun.Actor{UserID: "alice", Channel: "api"}},
	}
	if err := st.Write(ctx, runs); err != nil {
		log.Fatal(err)
	}

	failed, err := st.Find(ctx, taskrun.Query{Operation: "update_job", Status: "failed"})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range failed {
		fmt.Println(r.ID, r.Status, r.Actor.UserID, r.ErrorMessage)
	}
	byAlice, err := st.Find(ctx, taskrun.Query{UserID: "alice"})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range byAlice {
		fmt.Println(r.ID, r.Status, r.StartedAt.Format(time.TimeOnly))
	}
	created, err := st.Find(ctx, taskrun.Query{Ref: &otelop.Ref{Collection: "jobs", DocumentID: "j1"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("j1 written by", created[0].ID)
	// Output:
	// run-2 FAILED bob job j2 is locked
	// run-3 RUNNING 12:00:02
	// run-1 SUCCESS 12:00:00
	// j1 written by run-1
}
