package transforms

import "fmt"

// The batch job's rows travel between its stages as encoded rows: the
// binary encoding of codec.go, one row at a time, starting with the ind as a
// varint. Encoded rows are pointer-free, cost the garbage collector nothing
// while they wait in a sort buffer, and are what deduplication compares.

// LineCleaner cleans one table's raw lines into encoded rows and counts what
// it did. It is not safe for concurrent use; each goroutine has its own.
type LineCleaner struct {
	table  string
	def    *TableDef
	fields []string
	vals   [12][]byte
	strs   [12]string
	parse  parser
	enc    encoder
	c      cleanStats
}

// NewLineCleaner returns a cleaner for the named table.
func NewLineCleaner(table string) *LineCleaner {
	def, ok := TableOf(table)
	if !ok {
		panic("transforms: no table " + table)
	}
	c := &LineCleaner{table: table, def: def, fields: def.Schema.RawFields}
	// The row is encoded (copied) before Clean returns, so its strings may
	// point into the line, and be held in c.strs.
	c.parse = parser{fields: objectFields, borrow: true, strs: c.strs[:]}
	return c
}

// Clean cleans one raw line. A clean record returns its ind and its encoded
// row (valid until the next call); a rejected one returns its dead letter; a
// blank line is no record and returns neither.
func (c *LineCleaner) Clean(line []byte) (ind int64, row []byte, dead *DeadLetter) {
	if isBlank(line) {
		return 0, nil, nil
	}
	return c.CleanValue(line)
}

// CleanValue is Clean for a record's value known to be one (a line the S3
// sink wrapped, see internal/rawline): even empty or blank, it is a record,
// and rejected rather than skipped.
func (c *LineCleaner) CleanValue(line []byte) (ind int64, row []byte, dead *DeadLetter) {
	c.enc.b = c.enc.b[:0]
	vals := c.vals[:len(c.fields)]
	ind, bad, err := c.def.cleanEncode(line, vals, c.parse, &c.enc)
	if err != nil {
		reason := err.(*RejectError).Reason
		c.c.stats.countReject(reason)
		d := NewDeadLetter(c.table, reason, line)
		return 0, nil, &d
	}
	c.c.clean(c.fields, bad)
	return ind, c.enc.b, nil
}

// Stats returns what the cleaner counted since the last call, and resets it.
func (c *LineCleaner) Stats() TableStats {
	st := c.c.stats
	st.Table = c.table
	c.c.stats = TableStats{}
	return st
}

// AppendRow appends the encoded row of a *Pin, *Geo or *User.
func AppendRow(dst []byte, row any) []byte {
	b, err := EncodeRow(dst, row)
	if err != nil {
		panic(err)
	}
	return b
}

// EncodeRow appends the encoded row of a row struct (Pin, Geo or User, or
// a pointer to one): the one place where a row struct becomes the encoding
// that everything table-generic (the schema's JSON, Parquet, COPY values)
// reads. Another type is an error.
func EncodeRow(dst []byte, row any) ([]byte, error) {
	e := encoder{b: dst}
	switch r := row.(type) {
	case *Pin:
		e.pin(r)
	case Pin:
		e.pin(&r)
	case *Geo:
		e.geo(r)
	case Geo:
		e.geo(&r)
	case *User:
		e.user(r)
	case User:
		e.user(&r)
	default:
		return dst, fmt.Errorf("transforms: %T is not a clean row", row)
	}
	return e.b, nil
}

// DecodePinRow, DecodeGeoRow and DecodeUserRow decode one encoded row.
func DecodePinRow(b []byte) (Pin, error) {
	d := decoder{b: b}
	p := d.pin()
	return p, d.done()
}

func DecodeGeoRow(b []byte) (Geo, error) {
	d := decoder{b: b}
	g := d.geo()
	return g, d.done()
}

func DecodeUserRow(b []byte) (User, error) {
	d := decoder{b: b}
	u := d.user()
	return u, d.done()
}

// SortedRows is a stream of one table's encoded rows sorted by ind, with
// duplicates: a run, a merge of runs, a table file read back. Row is valid
// until the next call to Next.
type SortedRows interface {
	Next() bool
	Key() int64
	Row() []byte
	Err() error
}

// dedupRows keeps one row per ind of a sorted stream: the one with the
// smallest encoding, so the choice depends only on the rows, never on their
// order, and every runner and re-run gives the same table.
type dedupRows struct {
	in      SortedRows
	ok      bool // in holds a row not yet taken
	started bool
	ind     int64
	best    []byte
	dups    int64
}

// next advances to the next ind, false at the end.
func (d *dedupRows) next() bool {
	if !d.started {
		d.started = true
		d.ok = d.in.Next()
	}
	if !d.ok {
		return false
	}
	d.ind = d.in.Key()
	d.best = append(d.best[:0], d.in.Row()...)
	for d.ok = d.in.Next(); d.ok && d.in.Key() == d.ind; d.ok = d.in.Next() {
		d.dups++
		if r := d.in.Row(); bytesLess(r, d.best) {
			d.best = append(d.best[:0], r...)
		}
	}
	return true
}

func bytesLess(a, b []byte) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// DedupJoinSorted keeps one row per ind in each of the three tables' sorted
// streams, joins them on ind as it goes and folds every post into the
// partials' counts (AddCounts); emit gets each post (its rows' fields,
// views into the rows; a table with no row for the ind has none) and its
// rows as encoded (nil where none), both valid during the call, in ind
// order, to write the tables and to make its facts (PostFacts) distinct.
// Memory is one post, whatever the size of the streams, and a post costs
// no allocation: its rows are decoded into reused fields, never into row
// structs. The stats count the duplicates dropped, the rows kept and the
// nulls of the final tables.
func DedupJoinSorted(pins, geos, users SortedRows, emit func(Post, [3][]byte) error) (*Partials, []TableStats, error) {
	ds := [3]*dedupRows{{in: pins}, {in: geos}, {in: users}}
	var has [3]bool
	for i, d := range ds {
		has[i] = d.next()
	}
	partials := NewPartials()
	stats := make([]TableStats, len(Schemas))
	for i, s := range Schemas {
		stats[i] = TableStats{Table: s.Table, Nulls: map[string]int64{}}
	}
	var kept [3][]byte
	var fields [3][]Field
	for has[0] || has[1] || has[2] {
		ind := int64(1<<63 - 1)
		for i, d := range ds {
			if has[i] {
				ind = min(ind, d.ind)
			}
		}
		var post Post
		var rows [3][]byte
		for i, d := range ds {
			if !has[i] || d.ind != ind {
				continue
			}
			kept[i] = append(kept[i][:0], d.best...) // d.next overwrites best
			rows[i] = kept[i]
			var err error
			if fields[i], err = Schemas[i].DecodeFields(kept[i], fields[i]); err != nil {
				return nil, nil, err
			}
			switch i {
			case 0:
				post.Pin = fields[i]
			case 1:
				post.Geo = fields[i]
			case 2:
				post.User = fields[i]
			}
			Schemas[i].CountNullFields(stats[i].Nulls, fields[i])
			stats[i].Rows++
			has[i] = d.next()
		}
		partials.AddCounts(post)
		if err := emit(post, rows); err != nil {
			return nil, nil, err
		}
	}
	for i, d := range ds {
		if err := d.in.Err(); err != nil {
			return nil, nil, err
		}
		stats[i].Duplicates = d.dups
	}
	return partials, stats, nil
}
