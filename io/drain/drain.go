// Package drain lets a launcher ask its pipeline's unbounded reads to
// finish: on a drain request each read stops at the records it has, so the
// pipeline flushes its windows and sinks and ends, where cancelling the
// run's context would drop what is in flight.
//
// The request is a marker file. The launcher makes a Marker and gives its
// Path to the reads (kafkaio.ReadDrainMarker, kinesisio.ReadDrainMarker),
// which carry it in their configuration to wherever the runner runs them
// and look for the file whenever they have caught up; Request creates it.
// There is no process-wide state: two pipelines in one process (tests, the
// demo) drain apart, and a read without a marker never drains.
//
// What each runner gets:
//   - prism in the launcher's process, and LOOPBACK workers of a job
//     server: the workers are the launcher's process and see the file.
//   - PROCESS (and DOCKER with the marker's directory mounted) workers on
//     the launcher's machine see the file too: the path is what reaches
//     them, not a variable of the launcher's.
//   - Remote workers (Flink, Dataflow on other machines) do not see it:
//     drain those jobs through their runner (flink stop --drain, gcloud
//     dataflow jobs drain), which truncates the reads' restrictions. The
//     launcher's --drain-timeout still bounds how long it waits.
package drain

import (
	"os"
	"path/filepath"
)

// Marker is a drain request waiting to be made: a file path in a directory
// of its own, which Request creates.
type Marker struct {
	dir string
}

// markerFile is the marker's name in its directory.
const markerFile = "drain"

// NewMarker makes a marker in a new temporary directory; Close removes it.
func NewMarker() (*Marker, error) {
	dir, err := os.MkdirTemp("", "pinpipe-drain-")
	if err != nil {
		return nil, err
	}
	return &Marker{dir: dir}, nil
}

// Path is what the reads are configured with: the file whose existence is
// the drain request.
func (m *Marker) Path() string { return filepath.Join(m.dir, markerFile) }

// Request asks every read configured with the marker's path to finish. It
// may be called more than once.
func (m *Marker) Request() error {
	f, err := os.OpenFile(m.Path(), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// Close removes the marker and its directory.
func (m *Marker) Close() error { return os.RemoveAll(m.dir) }

// Requested reports whether the drain request at path was made. An empty
// path (a read without a marker) is never drained; a path that cannot be
// looked at counts as not requested, so a read runs on rather than ends
// early.
func Requested(path string) bool {
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}
