package transforms

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
)

// A fact is one member of a distinct set an insight is taken over: a (user,
// group, follower count) of a median, or a (join year, user) of the users
// joined. Many posts state the same fact; each counts once. Facts are
// encoded as bytes so that the batch job can make them distinct like rows,
// by sorting and merging runs, in bounded memory; Partials then keep only
// their histograms.
//
// Encoding: a kind byte, then the kind's fields: text as a uvarint length and
// bytes, numbers as varints, the null-name flag as one byte.

// fact kinds beyond the median kinds.
const factUserJoined uint8 = 10

// PostFacts calls emit with the encoded facts one post states; buf is
// scratch space (may be nil), returned grown for the next call. The slice
// emit gets is valid during the call.
func PostFacts(post Post, buf []byte, emit func([]byte)) []byte {
	p, u := post.Pin, post.User
	if u == nil {
		return buf
	}
	name, joined := u[userName], u[userDateJoined]
	if !joined.Null && !name.Null {
		buf = append(buf[:0], factUserJoined)
		buf = binary.AppendVarint(buf, int64(fieldYear(joined)))
		buf = appendText(buf, name.Bytes)
		emit(buf)
	}
	if p == nil || p[pinFollowerCount].Null {
		return buf
	}
	group := AgeGroup(u[userAge])
	appendName := func(b []byte) []byte {
		if name.Null {
			return append(b, 1)
		}
		return appendText(append(b, 0), name.Bytes)
	}
	followers := p[pinFollowerCount].Int
	if group != "" {
		buf = appendText(append(buf[:0], MedianByAge), []byte(group))
		buf = binary.AppendVarint(appendName(buf), followers)
		emit(buf)
	}
	if !joined.Null {
		year := int64(fieldYear(joined))
		buf = binary.AppendVarint(append(buf[:0], MedianByJoinYear), year)
		buf = binary.AppendVarint(appendName(buf), followers)
		emit(buf)
		if group != "" {
			buf = appendText(binary.AppendVarint(append(buf[:0], MedianByJoinYearAndAge), year), []byte(group))
			buf = binary.AppendVarint(appendName(buf), followers)
			emit(buf)
		}
	}
	return buf
}

func appendText(b, text []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(text))), text...)
}

// FactKey is the key a fact is bucketed and sorted by: a hash of its bytes,
// so equal facts meet, wherever they were stated. Stable across processes.
func FactKey(fact []byte) int64 {
	h := fnv.New64a()
	h.Write(fact)
	return int64(h.Sum64())
}

var errBadFact = errors.New("transforms: corrupt fact")

// AddFact folds one distinct fact into the histograms; the caller makes
// sure each fact is added once.
func (a *Partials) AddFact(fact []byte) error {
	d := decoder{b: fact}
	if len(d.b) == 0 {
		return errBadFact
	}
	kind := d.b[0]
	d.b = d.b[1:]
	if kind == factUserJoined {
		year := d.varint()
		d.text()
		if d.err != nil {
			return errBadFact
		}
		a.UsersJoined[int(year)]++
		return nil
	}
	g := MedianGroup{Kind: kind}
	switch kind {
	case MedianByAge:
		g.AgeGroup = d.text()
	case MedianByJoinYear:
		g.JoinYear = int(d.varint())
	case MedianByJoinYearAndAge:
		g.JoinYear = int(d.varint())
		g.AgeGroup = d.text()
	default:
		return errBadFact
	}
	if len(d.b) == 0 {
		return errBadFact
	}
	null := d.b[0] == 1
	d.b = d.b[1:]
	if !null {
		d.text()
	}
	followers := d.varint()
	if d.err != nil || len(d.b) != 0 {
		return errBadFact
	}
	h := a.Followers[g]
	if h == nil {
		h = map[int64]int64{}
		a.Followers[g] = h
	}
	h[followers]++
	return nil
}

// foldPending adds the facts Add kept in memory to the histograms.
func (a *Partials) foldPending() {
	for f := range a.pending {
		a.AddFact([]byte(f))
	}
	a.pending = nil
}

func (d *decoder) text() string {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.fail()
		return ""
	}
	s := string(d.b[k : k+int(n)])
	d.b = d.b[k+int(n):]
	return s
}
