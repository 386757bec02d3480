package mongostore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/otelop/otelop/taskrun"
	"github.com/otelop/otelop/taskrun/mongostore"
)

// Open connects by itself; Close disconnects. (These examples need a
// server, so they are compiled but not run.)
func ExampleOpen() {
	ctx := context.Background()
	st, err := mongostore.Open(ctx, "mongodb://localhost:27017/otelop",
		mongostore.WithRetention(90*24*time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close(ctx)

	// The failed bulk deletes of alice, newest first.
	runs, err := st.Find(ctx, taskrun.Query{Operation: "bulk_delete_jobs", Status: "FAILED", UserID: "alice", Limit: 20})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range runs {
		fmt.Println(r.StartedAt.Format(time.RFC3339), r.ID, r.ErrorMessage)
	}
}

// New uses the application's client, which stays the application's: the
// jobs live in the same database as the runs.
func ExampleNew() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://localhost:27017"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)

	st, err := mongostore.New(ctx, client.Database("jobs_app"))
	if err != nil {
		log.Fatal(err)
	}
	jobs := st.Database().Collection("jobs")
	_ = jobs
}
