package smb

import "container/heap"

// Iterator is a stream of rows sorted by key: a run, a bucket file read
// back, or a Merge of them. Row is valid until the next call to Next.
type Iterator interface {
	Next() bool
	Key() int64
	Row() []byte
	Err() error
}

// Merge k-way merges sorted iterators into one sorted stream, holding one
// row of each. Rows with equal keys come out in no particular order.
func Merge(its ...Iterator) Iterator {
	m := &merged{}
	for _, it := range its {
		if it.Next() {
			m.h = append(m.h, it)
		} else if err := it.Err(); err != nil && m.err == nil {
			m.err = err
		}
	}
	heap.Init(&m.h)
	return m
}

type merged struct {
	h       iterHeap
	current Iterator
	err     error
}

func (m *merged) Next() bool {
	if m.err != nil {
		return false
	}
	if m.current != nil {
		if m.current.Next() {
			heap.Push(&m.h, m.current)
		} else if err := m.current.Err(); err != nil {
			m.err = err
			return false
		}
		m.current = nil
	}
	if len(m.h) == 0 {
		return false
	}
	m.current = heap.Pop(&m.h).(Iterator)
	return true
}

func (m *merged) Key() int64  { return m.current.Key() }
func (m *merged) Row() []byte { return m.current.Row() }
func (m *merged) Err() error  { return m.err }

type iterHeap []Iterator

func (h iterHeap) Len() int           { return len(h) }
func (h iterHeap) Less(i, j int) bool { return h[i].Key() < h[j].Key() }
func (h iterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *iterHeap) Push(x any)        { *h = append(*h, x.(Iterator)) }
func (h *iterHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
