// Package parallel is the one worker pool of the batch job's DoFns. Local
// runners give a stage's bundle one goroutine, so a DoFn that wants both
// cores runs its elements' work here, and emits the results from its own
// goroutine, the only one Beam lets emit.
package parallel

import "runtime"

// Ordered runs up to Workers tasks at once and hands their results back in
// submission order, on the goroutine that calls Submit and Drain. A task's
// result is handed back even when a later one finished first, so the DoFn's
// output does not depend on scheduling.
type Ordered[R any] struct {
	// Workers bounds the tasks running at once; 0 means GOMAXPROCS.
	Workers int
	pending []chan R
}

// Submit starts task, first handing back (to emit) the oldest results while
// Workers tasks are running.
func (o *Ordered[R]) Submit(task func() R, emit func(R)) {
	n := o.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	for len(o.pending) >= n {
		o.next(emit)
	}
	ch := make(chan R, 1)
	go func() { ch <- task() }()
	o.pending = append(o.pending, ch)
}

// Drain waits for every task and hands back their results in order.
func (o *Ordered[R]) Drain(emit func(R)) {
	for len(o.pending) > 0 {
		o.next(emit)
	}
}

func (o *Ordered[R]) next(emit func(R)) {
	r := <-o.pending[0]
	o.pending[0] = nil
	o.pending = o.pending[1:]
	emit(r)
}
