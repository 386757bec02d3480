// Package memstore is an in-memory [taskrun.Store], for tests, demos and
// short-lived tools.
//
// A [Store] keeps every run in memory until the process exits: there is no
// retention and no persistence. It is safe for concurrent use and implements
// the full [taskrun.Query] semantics, including the Before cursor. It passes
// the conformance suite in package taskruntest, and the test harness of that
// package uses it to hold the TaskRuns a test produces.
//
// Runs are copied on the way in and on the way out, so neither the caller
// of Write nor the caller of Get, Find or All can change what the store
// holds. A run comes out as it went in: metadata and log attribute values
// keep their types (an int64 stays an int64, a []string a []string), nil and
// empty slices and maps stay apart, and times keep their location. Values of
// types other than bool, string, int, int64, float64, slices of those,
// []byte, json.RawMessage, map[string]any and []any are kept as they are,
// not copied. Times are stored without their monotonic clock reading, as a
// persistent store would, so runs compare and sort by wall clock alone.
//
// # How runs are held
//
// A store that holds hundreds of thousands of runs must not slow down the
// program writing them. Held as taskrun.TaskRun values, runs would be a heap
// of strings, slices, maps and boxed values that the garbage collector
// walks on every cycle, and the longer the store, the more of its work
// falls on the goroutines that allocate. So a Store encodes each run into a
// compact binary record and appends the records to large byte slices that
// hold no pointers, which the collector marks without looking into them. Next
// to the records it keeps only pointer-free index data: the started_at of
// each run, a hash table from id to run, and 16-bit fingerprints of the
// fields a Query compares for equality, so that Find passes over most runs
// that do not match without reading their records. Get, Find and All decode
// the runs they return. A write that replaces a run leaves the old record
// behind; once such records take more room than the stored ones (and at
// least 1 MiB), the store copies the stored ones to new slices.
//
// Runs are kept in started_at and id order, so Find walks only the time
// window of the query and decodes only the runs it returns; writes of runs
// newer than every stored one (the usual case) append.
package memstore
