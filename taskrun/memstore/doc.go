// Package memstore is an in-memory [taskrun.Store], for tests, demos and
// short-lived tools.
//
// A [Store] keeps every run in memory until the process exits: there is no
// retention and no persistence. It is safe for concurrent use and implements
// the full [taskrun.Query] semantics, including the Before cursor. It passes
// the conformance suite in package taskruntest, and the test harness of that
// package uses it to hold the TaskRuns a test produces.
//
// Runs are deep-copied on the way in and on the way out, so neither the
// caller of Write nor the caller of Get, Find or All can change what the
// store holds. Times are stored without their monotonic clock reading, as a
// persistent store would, so runs compare and sort by wall clock alone.
//
// Runs are kept in a slice sorted by started_at and id, so Find walks only
// the time window of the query and copies only the runs it returns; writes of
// runs newer than every stored one (the usual case) append to it.
package memstore
