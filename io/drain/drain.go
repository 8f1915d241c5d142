// Package drain lets a process ask its unbounded reads to finish: on a
// drain request each read stops at the records it has, so the pipeline
// flushes its windows and sinks and ends, where cancelling the run's context
// would drop what is in flight.
//
// The request is process-wide, so it reaches the reads when the runner runs
// the pipeline's workers in the launcher's process (prism, and LOOPBACK
// workers of a job server). Remote workers (Flink, Dataflow) are drained
// through their runner instead.
package drain

import "sync"

var (
	once sync.Once
	ch   = make(chan struct{})
)

// Request asks every unbounded read in this process to finish. It may be
// called more than once.
func Request() { once.Do(func() { close(ch) }) }

// Requested reports whether a drain was requested.
func Requested() bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Done is closed when a drain is requested.
func Done() <-chan struct{} { return ch }
