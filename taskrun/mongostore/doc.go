// Package mongostore is a [taskrun.Store] on MongoDB, using the official
// driver (go.mongodb.org/mongo-driver/v2).
//
// [Open] connects to a deployment from a mongodb:// or mongodb+srv:// URI
// (the database is the URI's path, "otelop" when empty) and owns that
// client; [New] uses a [mongo.Database] the application already has. Both
// create the collection "taskruns" and its indexes at start, idempotently.
//
//	st, err := mongostore.Open(ctx, "mongodb://localhost:27017/otelop",
//		mongostore.WithRetention(90*24*time.Hour))
//	if err != nil {
//		return err
//	}
//	defer st.Close(ctx)
//
// # Documents
//
// One document per run, with the snake_case names of [taskrun.TaskRun]:
// _id (the run id), operation_name, status, actor.user_id, started_at,
// finished_at, ... Times are BSON dates (millisecond precision), input_dump,
// metadata and log_entries[].attributes are embedded documents, so the
// collection is pleasant to query from mongosh:
//
//	// The failed bulk deletes, newest first.
//	db.taskruns.find({status: "FAILED", operation_name: "bulk_delete_jobs"}).sort({started_at: -1, _id: -1})
//
//	// Who touched job j-42, and with which input.
//	db.taskruns.find({"result_refs.document_id": "j-42"}, {operation_name: 1, "actor.user_id": 1, input_dump: 1})
//
//	// Everything alice ran in the last day.
//	db.taskruns.find({"actor.user_id": "alice", started_at: {$gte: new Date(Date.now() - 864e5)}})
//
//	// Runs that were dry runs, and the runs of one flow.
//	db.taskruns.find({"metadata.dry_run": true})
//	db.taskruns.find({orchestrator_flow_run_id: "flow-7"}).sort({started_at: 1})
//
//	// Failures per operation.
//	db.taskruns.aggregate([{$match: {status: "FAILED"}}, {$group: {_id: "$operation_name", n: {$sum: 1}}}, {$sort: {n: -1}}])
//
// Reading a run back gives the values written: metadata and log attributes
// come back as plain Go values (map[string]any, []any, string, float64,
// int64, bool), input_dump as the JSON object it was.
//
// Keys inside input_dump, metadata and log attributes are stored escaped
// where a server would refuse or misread them: "." as %2E, a leading "$" as
// %24, "%" as %25 (so slog's "req.id" is stored as "req%2Eid", and
// db.taskruns.find({"metadata.http%2Emethod": "GET"}) finds it). Reading
// undoes the escaping.
//
// # Writes
//
// [Store.Write] sends a batch as one unordered bulk write: one update
// command, one round trip, per [WithMaxWritesPerCommand] runs (1000 by
// default). Every run is an upsert by _id; a final run (SUCCESS, FAILED)
// replaces what is stored, a RUNNING or PENDING one only replaces a run that
// is not final, so a late RUNNING write never undoes a final state, whatever
// the order in which concurrent writers reach the server.
//
// # Indexes
//
// {started_at: -1, _id: -1} serves the newest-first order and cursors;
// operation_name, status, actor.user_id and tags each lead an index followed
// by started_at and _id; trace_id, idempotency_key (sparse),
// result_refs.document_id and orchestrator_flow_run_id have one each; with
// [WithRetention], a TTL index on finished_at deletes old finished runs.
//
// # MongoDB wire-protocol servers
//
// The tests run against the server named by OTELOP_TEST_MONGODB_URI and are
// skipped without it (they fail instead when OTELOP_REQUIRE_SERVICES=1).
// scripts/test.sh builds and starts one: FerretDB 1.24 embedded by
// tools/cmd/mongowire, on SQLite files. The store works on it, with these
// differences from MongoDB:
//
//   - it stalls on an update command of about 100 writes or more: use
//     WithMaxWritesPerCommand(50) (MongoDB takes 100,000);
//   - it has no TTL indexes: New with WithRetention fails, naming
//     expireAfterSeconds;
//   - it keeps no sparse flag, and its conditional updates are not atomic
//     (a RUNNING write racing with the final write of the same run could in
//     theory undo it; the processor never writes both at once).
package mongostore
