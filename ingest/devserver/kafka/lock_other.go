//go:build !unix

package kafka

import "os"

// lockDir only creates dir: there is no portable advisory lock here.
func lockDir(dir string) (func(), error) {
	return func() {}, os.MkdirAll(dir, 0o755)
}
