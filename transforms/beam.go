package transforms

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"unicode/utf8"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn6x0[context.Context, beam.EventTime, []byte, func(Pin), func(DeadLetter), func(TableStats)](&cleanPinFn{})
	register.DoFn6x0[context.Context, beam.EventTime, []byte, func(Geo), func(DeadLetter), func(TableStats)](&cleanGeoFn{})
	register.DoFn6x0[context.Context, beam.EventTime, []byte, func(User), func(DeadLetter), func(TableStats)](&cleanUserFn{})
	register.Emitter1[Pin]()
	register.Emitter1[Geo]()
	register.Emitter1[User]()
	register.Emitter1[DeadLetter]()
	register.Emitter1[TableStats]()
	register.Emitter1[Partials]()
	register.Combiner3[Partials, Partials, Insights](&mergePartialsFn{})
	register.Combiner3[Summary, TableStats, Summary](&summarizeFn{})

	beam.RegisterCoder(reflect.TypeOf(Partials{}), encodePartials, decodePartials)
	// Coders are found by function name on remote workers, and generic
	// instantiations all share one name, so each type has named functions.
	beam.RegisterCoder(reflect.TypeOf(Pin{}), encodePin, decodePin)
	beam.RegisterCoder(reflect.TypeOf(Geo{}), encodeGeo, decodeGeo)
	beam.RegisterCoder(reflect.TypeOf(User{}), encodeUser, decodeUser)
	beam.RegisterCoder(reflect.TypeOf(DeadLetter{}), encodeDeadLetter, decodeDeadLetter)
	beam.RegisterCoder(reflect.TypeOf(TableStats{}), encodeTableStats, decodeTableStats)
	beam.RegisterCoder(reflect.TypeOf(Insights{}), encodeInsights, decodeInsights)
	beam.RegisterCoder(reflect.TypeOf(Summary{}), encodeSummary, decodeSummary)
}

// Cleaned is what a clean composite produces: the clean rows, the rejects
// (DeadLetter) and per-bundle TableStats.
type Cleaned struct {
	Rows        beam.PCollection
	DeadLetters beam.PCollection
	Stats       beam.PCollection
}

// CleanPin cleans raw pin records ([]byte, one JSON object each) into Pin
// rows; rejects go to DeadLetters and never fail the pipeline.
func CleanPin(s beam.Scope, raw beam.PCollection) Cleaned {
	s = s.Scope("transforms.CleanPin")
	rows, dead, stats := beam.ParDo3(s, &cleanPinFn{}, raw)
	return Cleaned{rows, dead, stats}
}

// CleanGeo cleans raw geo records into Geo rows.
func CleanGeo(s beam.Scope, raw beam.PCollection) Cleaned {
	s = s.Scope("transforms.CleanGeo")
	rows, dead, stats := beam.ParDo3(s, &cleanGeoFn{}, raw)
	return Cleaned{rows, dead, stats}
}

// CleanUser cleans raw user records into User rows.
func CleanUser(s beam.Scope, raw beam.PCollection) Cleaned {
	s = s.Scope("transforms.CleanUser")
	rows, dead, stats := beam.ParDo3(s, &cleanUserFn{}, raw)
	return Cleaned{rows, dead, stats}
}

// Clean applies the clean composite of the named table.
func Clean(s beam.Scope, table string, raw beam.PCollection) Cleaned {
	def, ok := TableOf(table)
	if !ok {
		panic("transforms: unknown table " + table)
	}
	return def.Composite(s, raw)
}

// NewDeadLetter builds the dead-letter record of a rejected payload.
func NewDeadLetter(table, reason string, payload []byte) DeadLetter {
	d := DeadLetter{Table: table, Reason: reason, Payload: string(payload)}
	if !utf8.Valid(payload) {
		d.PayloadBase64 = base64.StdEncoding.EncodeToString(payload)
	}
	return d
}

// cleanStats accumulates one bundle's TableStats.
type cleanStats struct{ stats TableStats }

func (c *cleanStats) reject(table string, data []byte, err error, emit func(DeadLetter)) {
	reason := err.(*RejectError).Reason
	c.stats.countReject(reason)
	emit(NewDeadLetter(table, reason, data))
}

func (c *cleanStats) clean(fields []string, bad Unparsable) {
	c.stats.Read++
	c.stats.Clean++
	c.stats.countUnparsable(fields, bad)
}

func (c *cleanStats) flush(table string, emit func(TableStats)) {
	if c.stats.Read > 0 {
		c.stats.Table = table
		emit(c.stats)
	}
	c.stats = TableStats{}
}

// isBlank reports a line with nothing but white space: no record at all.
func isBlank(b []byte) bool { return len(bytes.TrimSpace(b)) == 0 }

type cleanPinFn struct{ c cleanStats }

func (f *cleanPinFn) ProcessElement(ctx context.Context, et beam.EventTime, data []byte, emit func(Pin), dead func(DeadLetter), _ func(TableStats)) {
	if isBlank(data) {
		return
	}
	row, bad, err := CleanPinRecord(data)
	if err != nil {
		f.c.reject(TablePin, data, err, dead)
		tableMetrics[TablePin].record(ctx, et, err.(*RejectError).Reason)
		return
	}
	f.c.clean(PinFields, bad)
	tableMetrics[TablePin].record(ctx, et, "")
	emit(row)
}

func (f *cleanPinFn) FinishBundle(_ func(Pin), _ func(DeadLetter), stats func(TableStats)) {
	f.c.flush(TablePin, stats)
}

type cleanGeoFn struct{ c cleanStats }

func (f *cleanGeoFn) ProcessElement(ctx context.Context, et beam.EventTime, data []byte, emit func(Geo), dead func(DeadLetter), _ func(TableStats)) {
	if isBlank(data) {
		return
	}
	row, bad, err := CleanGeoRecord(data)
	if err != nil {
		f.c.reject(TableGeo, data, err, dead)
		tableMetrics[TableGeo].record(ctx, et, err.(*RejectError).Reason)
		return
	}
	f.c.clean(GeoFields, bad)
	tableMetrics[TableGeo].record(ctx, et, "")
	emit(row)
}

func (f *cleanGeoFn) FinishBundle(_ func(Geo), _ func(DeadLetter), stats func(TableStats)) {
	f.c.flush(TableGeo, stats)
}

type cleanUserFn struct{ c cleanStats }

func (f *cleanUserFn) ProcessElement(ctx context.Context, et beam.EventTime, data []byte, emit func(User), dead func(DeadLetter), _ func(TableStats)) {
	if isBlank(data) {
		return
	}
	row, bad, err := CleanUserRecord(data)
	if err != nil {
		f.c.reject(TableUser, data, err, dead)
		tableMetrics[TableUser].record(ctx, et, err.(*RejectError).Reason)
		return
	}
	f.c.clean(UserFields, bad)
	tableMetrics[TableUser].record(ctx, et, "")
	emit(row)
}

func (f *cleanUserFn) FinishBundle(_ func(User), _ func(DeadLetter), stats func(TableStats)) {
	f.c.flush(TableUser, stats)
}

// mergePartialsFn merges shard Partials and finishes them into Insights.
type mergePartialsFn struct{}

func (f *mergePartialsFn) CreateAccumulator() Partials { return *NewPartials() }

func (f *mergePartialsFn) AddInput(a Partials, p Partials) Partials {
	a.Merge(&p)
	return a
}

func (f *mergePartialsFn) MergeAccumulators(a, b Partials) Partials {
	a.Merge(&b)
	return a
}

func (f *mergePartialsFn) ExtractOutput(a Partials) Insights { return a.Finish() }

// ComputeInsights merges the shards' Partials into one Insights element,
// also when there is no input at all (every insight is then empty).
func ComputeInsights(s beam.Scope, partials beam.PCollection) beam.PCollection {
	s = s.Scope("transforms.ComputeInsights")
	partials = beam.Flatten(s, partials, beam.Create(s, *NewPartials()))
	return beam.Combine(s, &mergePartialsFn{}, partials)
}

func decodeJSON[T any](b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

func encodePin(v Pin) ([]byte, error) { return json.Marshal(v) }
func decodePin(b []byte) (Pin, error) { return decodeJSON[Pin](b) }

func encodeGeo(v Geo) ([]byte, error) { return json.Marshal(v) }
func decodeGeo(b []byte) (Geo, error) { return decodeJSON[Geo](b) }

func encodeUser(v User) ([]byte, error) { return json.Marshal(v) }
func decodeUser(b []byte) (User, error) { return decodeJSON[User](b) }

func encodeDeadLetter(v DeadLetter) ([]byte, error) { return json.Marshal(v) }
func decodeDeadLetter(b []byte) (DeadLetter, error) { return decodeJSON[DeadLetter](b) }

func encodeTableStats(v TableStats) ([]byte, error) { return json.Marshal(v) }
func decodeTableStats(b []byte) (TableStats, error) { return decodeJSON[TableStats](b) }

func encodeInsights(v Insights) ([]byte, error) { return json.Marshal(v) }
func decodeInsights(b []byte) (Insights, error) { return decodeJSON[Insights](b) }

func encodeSummary(v Summary) ([]byte, error) { return json.Marshal(v) }
func decodeSummary(b []byte) (Summary, error) { return decodeJSON[Summary](b) }
