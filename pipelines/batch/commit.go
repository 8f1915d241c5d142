package batch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/pinpipe/pinpipe/io/files"
	"github.com/pinpipe/pinpipe/io/icebergio"
	"github.com/pinpipe/pinpipe/io/smb"
	"github.com/pinpipe/pinpipe/transforms"
)

// A run publishes its output as a whole, with one atomic write of the
// commit file. Until then it writes only new names (bucket files and dead
// letters named by its run id, runs under the temp location), so a run killed
// at any moment leaves the previous commit, and every file it names,
// complete and readable, and the next run finishes with exact results.
// Readers and the next run trust the commit file, not a directory listing.

// CommitFile is the output's commit: which files hold the tables and the
// dead letters, in what layout, and which input objects they came from.
const CommitFile = "_commit.json"

// LockFile holds the lease of the run writing the output.
const LockFile = "_lock.json"

// commitVersion is the version of the commit file's form.
const commitVersion = 1

// Commit is the content of CommitFile.
type Commit struct {
	Version     int                 `json:"version"`
	RunID       string              `json:"run_id"`
	CommittedAt time.Time           `json:"committed_at"`
	TopicPrefix string              `json:"topic_prefix"`
	Format      string              `json:"format"`
	Layout      smb.Layout          `json:"layout"`
	Tables      []OutputFile        `json:"tables"`
	DeadLetters []OutputFile        `json:"dead_letters"`
	Inputs      []string            `json:"inputs"`
	Summary     transforms.Summary  `json:"summary"`
	Insights    transforms.Insights `json:"insights"`
}

// TableFiles are the committed files of one table, by bucket.
func (c *Commit) TableFiles(table string) []string {
	var out []string
	for _, f := range c.Tables {
		if f.Table == table {
			out = append(out, f.Path)
		}
	}
	return out
}

// ReadCommit reads an output's commit; nil, nil when it has none.
func ReadCommit(ctx context.Context, output string) (*Commit, error) {
	b, err := files.ReadFile(ctx, files.Join(output, CommitFile))
	if files.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", files.Join(output, CommitFile), err)
	}
	var c Commit
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("reading %s: %w", files.Join(output, CommitFile), err)
	}
	if c.Version != commitVersion {
		return nil, fmt.Errorf("%s has version %d; this pinpipe reads version %d", files.Join(output, CommitFile), c.Version, commitVersion)
	}
	if err := c.Layout.Check(); err != nil {
		return nil, err
	}
	return &c, nil
}

func writeCommit(ctx context.Context, output string, c *Commit) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return files.WriteFileAtomic(ctx, files.Join(output, CommitFile), append(b, '\n'))
}

// lease is a run's hold on an output: one run at a time may write it. It
// expires unless renewed, so a run that died without releasing it (a
// SIGKILL, a lost machine) blocks the output only until then; on the same
// host, a holder whose process is gone is known dead at once.
type lease struct {
	RunID   string    `json:"run_id"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Expires time.Time `json:"expires"`

	name string
	stop chan struct{}
	done chan struct{}
}

// leaseTTL is how long a lease lasts unless renewed; it is renewed every
// third of that.
var leaseTTL = 5 * time.Minute

func (l *lease) expired(now time.Time) bool {
	if now.After(l.Expires) {
		return true
	}
	host, _ := os.Hostname()
	if l.Host == host && l.PID > 0 {
		err := syscall.Kill(l.PID, 0)
		return errors.Is(err, syscall.ESRCH)
	}
	return false
}

// acquireLease takes the output's lease for runID, or says who holds it.
func acquireLease(ctx context.Context, output, runID string) (*lease, error) {
	host, _ := os.Hostname()
	l := &lease{RunID: runID, Host: host, PID: os.Getpid(), name: files.Join(output, LockFile)}
	for attempt := 0; ; attempt++ {
		l.Expires = time.Now().Add(leaseTTL)
		b, _ := json.Marshal(l)
		err := files.CreateExclusive(ctx, l.name, b)
		if err == nil {
			break
		}
		if !errors.Is(err, files.ErrExist) {
			return nil, fmt.Errorf("taking the lease %s: %w", l.name, err)
		}
		old, rerr := readLease(ctx, l.name)
		if rerr != nil && !files.IsNotExist(rerr) {
			return nil, rerr
		}
		if attempt > 0 || (old != nil && !old.expired(time.Now())) {
			who := "another run"
			if old != nil {
				who = fmt.Sprintf("run %s (host %s, pid %d) until %s", old.RunID, old.Host, old.PID, old.Expires.Format(time.RFC3339))
			}
			return nil, fmt.Errorf("%s is being written by %s; wait for it to finish, or, if it is dead, for its lease to expire (or delete %s)",
				output, who, l.name)
		}
		// The holder is dead or its lease ran out: take over.
		if err := files.Remove(ctx, l.name); err != nil {
			return nil, err
		}
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.renew(ctx)
	return l, nil
}

func readLease(ctx context.Context, name string) (*lease, error) {
	b, err := files.ReadFile(ctx, name)
	if err != nil {
		return nil, err
	}
	var l lease
	if err := json.Unmarshal(b, &l); err != nil {
		// A half-written lease (its writer died) holds nothing.
		return &lease{}, nil
	}
	return &l, nil
}

func (l *lease) renew(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(leaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.Expires = time.Now().Add(leaseTTL)
			b, _ := json.Marshal(l)
			files.WriteFileAtomic(ctx, l.name, b)
		}
	}
}

// check confirms the lease is still this run's, just before it commits, so
// that a run that lost its lease (it stalled past the expiry and another
// run took over) never publishes.
func (l *lease) check(ctx context.Context) error {
	cur, err := readLease(ctx, l.name)
	if err != nil {
		return fmt.Errorf("checking the lease before committing: %w", err)
	}
	if cur.RunID != l.RunID {
		return fmt.Errorf("lost the lease on the output to run %s; not committing", cur.RunID)
	}
	return nil
}

// release stops renewing and removes the lease if it is still this run's.
func (l *lease) release(ctx context.Context) {
	close(l.stop)
	<-l.done
	if cur, err := readLease(ctx, l.name); err == nil && cur.RunID == l.RunID {
		files.Remove(ctx, l.name)
	}
}

// newRunID names a run: sortable by time, unique by its random part.
func newRunID() string {
	return time.Now().UTC().Format("20060102T150405Z") + "-" + randomID()[:8]
}

// tempDirs returns the directory of a run's temporary files, and the glob
// of every run's of the same output: runs live under the temp location
// (Beam's --temp_location, or <output>/_temp), in a directory named by a
// hash of the output, so outputs sharing a temp location keep apart.
func tempDirs(tempLocation, output, runID string) (run, all string) {
	h := sha256.Sum256([]byte(output))
	prefix := "pinpipe-" + hex.EncodeToString(h[:6]) + "-"
	return files.Join(tempLocation, prefix+runID), files.Join(tempLocation, prefix+"*", "*")
}

// collectGarbage removes what is in the output's directories but not in the
// commit: files of earlier commits, and of runs that died before theirs. It
// runs only while the caller holds the lease. An iceberg output's tables
// are in the warehouse, where files of earlier snapshots stay for readers
// of those snapshots (until they expire): only files no snapshot names go.
func collectGarbage(ctx context.Context, o Options, c *Commit) error {
	output := o.Output
	if o.Format == FormatIceberg {
		if _, err := icebergio.RemoveOrphans(ctx, o.Iceberg, 0, false); err != nil {
			return err
		}
	}
	keep := map[string]bool{}
	for _, f := range slices.Concat(c.Tables, c.DeadLetters) {
		keep[f.Path] = true
	}
	var stale []string
	for _, g := range []string{files.Join(output, TablesDir, "*", "*"), files.Join(output, DeadLetterDir, "*"), files.Join(output, legacyManifestFile)} {
		names, err := files.Expand(ctx, g)
		if err != nil {
			return err
		}
		for _, n := range names {
			if !keep[n] {
				stale = append(stale, n)
			}
		}
	}
	return files.RemoveFiles(ctx, stale...)
}

// crashEnv names the point of a run at which the process kills itself
// (SIGKILL), when set: how the crash tests stop a run at exactly the worst
// moments (mid-write, just before and just after the commit) rather than
// wherever a timer happens to fall. Never set in production.
const crashEnv = "PINPIPE_CRASH_AT"

// Crash points, in the order a run passes them.
const (
	crashTableWrite    = "table-write"    // a bucket file half written
	crashBeforeCommit  = "before-commit"  // every file written, nothing committed
	crashAfterCommit   = "after-commit"   // committed, views and garbage not yet
	crashMidPublish    = "mid-publish"    // committed, one Iceberg table published
	crashBeforeRelease = "before-release" // all done but the lease and temp files
)

func crashPoint(name string) {
	if os.Getenv(crashEnv) == name {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
