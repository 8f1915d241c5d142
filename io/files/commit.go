package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// isLocal reports a plain local path (no scheme), where the operating
// system's rename and exclusive create give atomicity directly.
func isLocal(name string) bool { return !strings.Contains(name, "://") }

// WriteFileAtomic replaces name with data so that a reader, or a crash,
// sees either the old contents or the new, never a part: on a local disk by
// writing a temporary file and renaming it over name; on S3 and GCS a single
// object upload is atomic already.
func WriteFileAtomic(ctx context.Context, name string, data []byte) error {
	if !isLocal(name) {
		return WriteFile(ctx, name, data)
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// ErrExist is returned by CreateExclusive when the file exists.
var ErrExist = fs.ErrExist

// CreateExclusive creates name with data only if it does not exist yet,
// returning ErrExist otherwise. On a local disk the create is atomic
// (O_EXCL). An object store offers no such create through Beam's filesystem,
// so there it checks, writes and reads back: two creators racing within the
// same moment can both believe they won, a window a lease's holder check at
// commit time closes.
func CreateExclusive(ctx context.Context, name string, data []byte) error {
	if isLocal(name) {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return ErrExist
			}
			return err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	if _, err := ReadFile(ctx, name); err == nil {
		return ErrExist
	} else if !IsNotExist(err) {
		return err
	}
	if err := WriteFile(ctx, name, data); err != nil {
		return err
	}
	got, err := ReadFile(ctx, name)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return ErrExist
	}
	return nil
}

// IsNotExist reports an error that says a file does not exist, on any of
// the job's filesystems: local files say fs.ErrNotExist, Beam's S3
// filesystem the SDK's NoSuchKey or a 404.
func IsNotExist(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "NoSuchKey") ||
		strings.Contains(err.Error(), "StatusCode: 404") || strings.Contains(err.Error(), "storage: object doesn't exist")
}
