package transforms

import "github.com/apache/beam/sdks/v2/go/pkg/beam"

// TableDef is one clean table's descriptor: its schema and its cleaning,
// in the forms the pipelines use. Code that works on any table looks the
// table up here by name (TableOf) instead of switching on it.
type TableDef struct {
	Schema *Schema
	// CleanRecord cleans one raw record into its row struct (Pin, Geo or
	// User), or rejects it with a *RejectError.
	CleanRecord func(raw []byte) (row any, bad Unparsable, err error)
	// Composite is the table's Beam clean composite (CleanPin, ...).
	Composite func(s beam.Scope, raw beam.PCollection) Cleaned
	// cleanEncode cleans a raw record into e (vals is scratch, one per
	// raw field; ps says how to read it), the batch job's per-line form
	// (LineCleaner).
	cleanEncode func(raw []byte, vals [][]byte, ps parser, e *encoder) (ind int64, bad Unparsable, err error)
}

// TableDefs are the three tables' descriptors, in the canonical order.
var TableDefs = []TableDef{
	{Schema: &PinSchema, Composite: CleanPin,
		CleanRecord: func(raw []byte) (any, Unparsable, error) { return CleanPinRecord(raw) },
		cleanEncode: func(raw []byte, vals [][]byte, ps parser, e *encoder) (int64, Unparsable, error) {
			p, bad, err := cleanPin(raw, vals, ps)
			if err == nil {
				e.pin(&p)
			}
			return p.Ind, bad, err
		}},
	{Schema: &GeoSchema, Composite: CleanGeo,
		CleanRecord: func(raw []byte) (any, Unparsable, error) { return CleanGeoRecord(raw) },
		cleanEncode: func(raw []byte, vals [][]byte, ps parser, e *encoder) (int64, Unparsable, error) {
			g, bad, err := cleanGeo(raw, vals, ps)
			if err == nil {
				e.geo(&g)
			}
			return g.Ind, bad, err
		}},
	{Schema: &UserSchema, Composite: CleanUser,
		CleanRecord: func(raw []byte) (any, Unparsable, error) { return CleanUserRecord(raw) },
		cleanEncode: func(raw []byte, vals [][]byte, ps parser, e *encoder) (int64, Unparsable, error) {
			u, bad, err := cleanUser(raw, vals, ps)
			if err == nil {
				e.user(&u)
			}
			return u.Ind, bad, err
		}},
}

// TableOf returns the named table's descriptor; false for no such table.
func TableOf(name string) (*TableDef, bool) {
	for i := range TableDefs {
		if TableDefs[i].Schema.Table == name {
			return &TableDefs[i], true
		}
	}
	return nil, false
}
