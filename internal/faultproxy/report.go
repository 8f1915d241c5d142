package faultproxy

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// DefaultDuration is how long a fault lasts in the outage tests unless
// $PINPIPE_FAULT_DURATION says otherwise: a few seconds, so that make test
// stays fast; make chaos sets 20s.
const DefaultDuration = 3 * time.Second

// Duration is the outage tests' fault duration: $PINPIPE_FAULT_DURATION
// (a Go duration) or DefaultDuration.
func Duration(t testing.TB) time.Duration {
	t.Helper()
	s := os.Getenv("PINPIPE_FAULT_DURATION")
	if s == "" {
		return DefaultDuration
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("PINPIPE_FAULT_DURATION=%q: want a positive duration such as 20s", s)
	}
	return d
}

// Outcome is what an outage test measured: one row of make chaos's table.
type Outcome struct {
	Fault    string        // what failed, and under what
	Duration time.Duration // how long the fault lasted
	Sent     int           // records sent (acknowledged by the source)
	Landed   int           // distinct records in the output
	Lost     int           // sent and not in the output
	Doubled  int           // records in the output more than once
	// Recover is from the fault's end until the output held every record
	// sent before it ended.
	Recover time.Duration
}

// ReportFile is the environment variable naming the file Report appends
// its rows to (make chaos sets it and prints the table from it).
const ReportFile = "PINPIPE_CHAOS_REPORT"

// Report logs o, and appends it as a tab-separated row to $PINPIPE_CHAOS_REPORT
// when set. It fails the test when anything was lost or doubled.
func Report(t testing.TB, o Outcome) {
	t.Helper()
	row := fmt.Sprintf("%s\t%s\t%d\t%d\t%d\t%d\t%.1f\n", o.Fault, o.Duration, o.Sent, o.Landed, o.Lost, o.Doubled, o.Recover.Seconds())
	t.Logf("outage: %s for %s: %d sent, %d landed, %d lost, %d doubled, recovered in %.1f s",
		o.Fault, o.Duration, o.Sent, o.Landed, o.Lost, o.Doubled, o.Recover.Seconds())
	if o.Lost != 0 || o.Doubled != 0 || o.Landed != o.Sent {
		t.Errorf("%s: %d sent, %d landed, %d lost, %d doubled: want every record once", o.Fault, o.Sent, o.Landed, o.Lost, o.Doubled)
	}
	if name := os.Getenv(ReportFile); name != "" {
		f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = f.WriteString(row)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			t.Errorf("writing the outage report: %v", err)
		}
	}
}

// Count compares what was sent with what landed (each landed record's
// key, as often as it landed): how many distinct keys landed, how many sent
// are missing, and how many landed more than once.
func Count(sent []string, landed map[string]int) (distinct, lost, doubled int) {
	for _, n := range landed {
		if n > 1 {
			doubled++
		}
	}
	for _, k := range sent {
		if landed[k] == 0 {
			lost++
		}
	}
	return len(landed), lost, doubled
}
