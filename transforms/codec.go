package transforms

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// The row encoding below is compact and allocation-light: each row's fields
// in column order, the ind a varint, a presence byte before each nullable one.

var errCorrupt = errors.New("transforms: corrupt row encoding")

type encoder struct{ b []byte }

func (e *encoder) varint(v int64) { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s *string) {
	if s == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.b = binary.AppendUvarint(e.b, uint64(len(*s)))
	e.b = append(e.b, *s...)
}
func (e *encoder) int(v *int64) {
	if v == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.varint(*v)
}
func (e *encoder) time(t *time.Time) {
	if t == nil {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.varint(t.Unix())
	e.varint(int64(t.Nanosecond()))
}

func (e *encoder) pin(p *Pin) {
	e.varint(p.Ind)
	e.str(p.UniqueID)
	e.str(p.Title)
	e.str(p.Description)
	e.int(p.FollowerCount)
	e.str(p.PosterName)
	e.str(p.TagList)
	e.str(p.IsImageOrVideo)
	e.str(p.ImageSrc)
	e.str(p.SaveLocation)
	e.str(p.Category)
}

func (e *encoder) geo(g *Geo) {
	e.varint(g.Ind)
	e.str(g.Country)
	if g.Coordinates == nil {
		e.b = append(e.b, 0)
	} else {
		e.b = append(e.b, 1)
		e.varint(int64(len(g.Coordinates)))
		for _, f := range g.Coordinates {
			e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(f))
		}
	}
	e.time(g.Timestamp)
}

func (e *encoder) user(u *User) {
	e.varint(u.Ind)
	e.str(u.UserName)
	e.int(u.Age)
	e.time(u.DateJoined)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) fail() {
	d.err = errCorrupt
	d.b = nil
}

func (d *decoder) present() bool {
	if len(d.b) == 0 {
		d.fail()
		return false
	}
	p := d.b[0] == 1
	d.b = d.b[1:]
	return p
}

func (d *decoder) str() *string {
	if !d.present() {
		return nil
	}
	s := string(d.bytes())
	return &s
}

// bytes reads a length and that many bytes (aliasing the row).
func (d *decoder) bytes() []byte {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || uint64(len(d.b)-k) < n {
		d.fail()
		return nil
	}
	b := d.b[k : k+int(n) : k+int(n)]
	d.b = d.b[k+int(n):]
	return b
}

func (d *decoder) int() *int64 {
	if !d.present() {
		return nil
	}
	v := d.varint()
	return &v
}

func (d *decoder) time() *time.Time {
	if !d.present() {
		return nil
	}
	sec, nsec := d.varint(), d.varint()
	t := time.Unix(sec, nsec).UTC()
	return &t
}

func (d *decoder) count() int {
	n := d.varint()
	if n < 0 || n > int64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) pin() (p Pin) {
	p.Ind = d.varint()
	p.UniqueID, p.Title, p.Description = d.str(), d.str(), d.str()
	p.FollowerCount = d.int()
	p.PosterName, p.TagList, p.IsImageOrVideo, p.ImageSrc, p.SaveLocation, p.Category = d.str(), d.str(), d.str(), d.str(), d.str(), d.str()
	return p
}

func (d *decoder) geo() (g Geo) {
	g.Ind = d.varint()
	g.Country = d.str()
	if d.present() {
		n := d.count()
		if len(d.b) < 8*n {
			d.fail()
			return g
		}
		g.Coordinates = make([]float64, n)
		for j := range g.Coordinates {
			g.Coordinates[j] = math.Float64frombits(binary.LittleEndian.Uint64(d.b))
			d.b = d.b[8:]
		}
	}
	g.Timestamp = d.time()
	return g
}

func (d *decoder) user() (u User) {
	u.Ind = d.varint()
	u.UserName = d.str()
	u.Age = d.int()
	u.DateJoined = d.time()
	return u
}

// done reports a decoding error, or bytes left over after one row.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return d.err
}
