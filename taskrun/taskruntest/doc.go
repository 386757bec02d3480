// Package taskruntest helps test code that defines otelop operations, and
// stores that hold TaskRuns.
//
// [New] gives a test a TracerProvider wired to an in-memory span exporter
// and to a TaskRun processor over an in-memory store, so a test can call an
// operation and assert both its span and its TaskRun in a few lines.
// [RunStoreSuite] is the conformance suite every [taskrun.Store] passes.
package taskruntest
