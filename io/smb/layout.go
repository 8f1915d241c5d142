package smb

import "fmt"

// SortKey is the column every bucket file is sorted by.
const SortKey = "ind"

// Layout describes a bucketed output: how a key finds its bucket, how many
// there are, and what each bucket file is sorted by. A run that merges into
// an output must use the output's layout.
type Layout struct {
	Hash    string `json:"hash"`
	Buckets int    `json:"buckets"`
	SortKey string `json:"sort_key"`
}

// NewLayout is the layout of n buckets with this package's hash and sort key.
func NewLayout(n int) Layout { return Layout{Hash: HashName, Buckets: n, SortKey: SortKey} }

// Check reports a layout this package cannot merge into.
func (l Layout) Check() error {
	if l.Hash != HashName || l.SortKey != SortKey || l.Buckets < 1 {
		return fmt.Errorf("smb: unsupported layout %+v (want hash %s, sort key %s)", l, HashName, SortKey)
	}
	return nil
}

// BucketsFor picks a bucket count for an input of inputBytes: about
// bytesPerBucket each, and at least min, so a bucket's files stay a size
// engines read well however large the input grows.
func BucketsFor(inputBytes, bytesPerBucket int64, min int) int {
	n := int((inputBytes + bytesPerBucket - 1) / bytesPerBucket)
	return max(n, min)
}
