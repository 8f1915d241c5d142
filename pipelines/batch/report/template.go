package report

// pageHTML is the whole page. The styles are inline and use only fonts the
// reader's system has (Arial's metrics: Liberation Sans on Linux), so the
// page needs nothing beyond itself; there are no scripts. Chart widths in
// charts.go match the grid below: .page is 1100px wide with 24px padding,
// six columns with a 16px gap, cards with 18px padding and a 1px border.
const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="pinpipe batch">
<title>pinpipe batch report · {{.Started}}</title>
<style>
:root {
  --ink: #1f2933; --muted: #616e7c; --faint: #8a96a3; --line: #e4e7eb; --bg: #f3f5f8;
  --bar: #3c6fb4; --accent: #c2571a; --band: #f6f8fb;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Liberation Sans", sans-serif; }
.page { max-width: 1100px; margin: 0 auto; padding: 28px 24px 40px; }
.top { display: flex; justify-content: space-between; align-items: flex-end; gap: 24px;
  border-bottom: 1px solid var(--line); padding-bottom: 16px; margin-bottom: 20px; }
.brand { font-size: 12px; font-weight: 600; letter-spacing: .08em; text-transform: uppercase; color: var(--bar); }
h1 { font-size: 26px; line-height: 1.2; margin: 2px 0 0; font-weight: 650; }
.when { text-align: right; color: var(--muted); font-size: 13px; }
.when b { color: var(--ink); font-weight: 600; }
h2 { font-size: 17px; margin: 30px 0 4px; font-weight: 650; }
h2 + .lead { margin: 0 0 14px; color: var(--muted); font-size: 13px; }
.kpis { display: grid; grid-template-columns: repeat(6, 1fr); gap: 12px; }
.kpi { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.kpi .l { font-size: 11px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .05em; }
.kpi .v { font-size: 22px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
.kpi .n { font-size: 12px; color: var(--faint); }
.grid { display: grid; grid-template-columns: repeat(6, 1fr); gap: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px 12px; min-width: 0;
  display: flex; flex-direction: column; }
/* Narrow charts sit at the bottom of their card, so that the columns side
   by side line up whatever their titles wrap to. */
.span2 .plot, .span2 .nodata { margin-top: auto; }
.span6 { grid-column: span 6; } .span4 { grid-column: span 4; } .span3 { grid-column: span 3; } .span2 { grid-column: span 2; }
.card header { display: flex; justify-content: space-between; align-items: baseline; gap: 12px; }
.card h3 { font-size: 15px; margin: 0; font-weight: 650; }
.card .facts { font-size: 12px; color: var(--muted); white-space: nowrap; }
.card .sub { margin: 2px 0 10px; color: var(--muted); font-size: 13px; }
.card footer { margin-top: 8px; font: 11px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; color: var(--faint); }
.plot.scroll { max-height: 480px; overflow-y: auto; border-top: 1px solid var(--line); border-bottom: 1px solid var(--line); }
.nodata { display: flex; align-items: center; justify-content: center; min-height: 140px; margin: 0;
  border: 1px dashed var(--line); border-radius: 6px; color: var(--faint); font-size: 14px; }
svg.chart { display: block; max-width: 100%; height: auto; font-family: inherit; }
svg .band { fill: var(--band); }
svg .grid { stroke: #e6eaef; stroke-width: 1; }
svg .axis { stroke: #9aa5b1; stroke-width: 1; }
svg .bar:not([fill]) { fill: var(--bar); }
svg .bar:hover, svg .seg:hover { opacity: .8; }
svg text { fill: var(--ink); font-size: 12px; }
svg .tick { fill: var(--faint); font-size: 11px; }
svg .head { fill: var(--muted); font-size: 11px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
svg .axis-title { fill: var(--muted); font-size: 12px; }
svg .group { font-weight: 600; }
svg .tie { fill: var(--accent); font-size: 11px; font-weight: 600; }
svg .val { fill: #3e4c59; font-size: 11px; font-variant-numeric: tabular-nums; }
svg .inval { fill: #fff; font-size: 11px; font-weight: 600; }
svg .legend { fill: var(--muted); font-size: 11px; }
table.counts { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; }
.counts th, .counts td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: right; }
.counts th { font-size: 11px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
.counts th:first-child, .counts td:first-child { text-align: left; }
.counts tr.total td { font-weight: 650; border-bottom: none; border-top: 2px solid var(--line); }
dl.run { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0; font-size: 13px; }
dl.run dt { color: var(--muted); }
dl.run dd { margin: 0; overflow-wrap: anywhere; }
dl.run code { font: 12px ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; }
pre.sql { margin: 4px 0 0; padding: 10px 12px; background: var(--band); border-radius: 6px; overflow-x: auto;
  font: 12px/1.5 ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace; white-space: pre; }
.foot { margin-top: 28px; color: var(--faint); font-size: 12px; text-align: center; }
@media (max-width: 900px) { .grid { grid-template-columns: 1fr; } .grid > .card { grid-column: 1 / -1; } .kpis { grid-template-columns: repeat(3, 1fr); } }
@media print { body { background: #fff; } .plot.scroll { max-height: none; overflow: visible; } .card { break-inside: avoid; } }
</style>
</head>
<body>
<div class="page">

<header class="top">
  <div>
    <div class="brand">pinpipe · batch run</div>
    <h1>Posts, users and data quality</h1>
  </div>
  <div class="when">Run started <b>{{.Started}}</b><br>wall time <b>{{.WallTime}}</b>{{with .Meta.Runner}} · runner <b>{{.}}</b>{{end}}</div>
</header>

<section id="run">
<div class="kpis">
{{- range .KPIs}}
  <div class="kpi"><div class="l">{{.Label}}</div><div class="v">{{.Value}}</div><div class="n">{{.Note}}</div></div>
{{- end}}
</div>

<h2>Counts and timings</h2>
<p class="lead">Per table, from <code>summary.json</code>: read = clean + rejected; clean = rows + duplicates dropped; nulled = unparsable fields set to null.</p>
<div class="grid">
<div class="card span4">
<table class="counts">
<thead><tr><th>table</th><th>read</th><th>clean</th><th>rejected</th><th>duplicates</th><th>rows</th><th>nulled</th><th>null cells</th></tr></thead>
<tbody>
{{- range .Counts}}
<tr{{if .Total}} class="total"{{end}}><td>{{.Table}}</td><td>{{int .Read}}</td><td>{{int .Clean}}</td><td>{{int .Rejected}}</td><td>{{int .Dups}}</td><td>{{int .Rows}}</td><td>{{int .Nulled}}</td><td>{{int .NullCells}}</td></tr>
{{- end}}
</tbody>
</table>
</div>
<div class="card span2">
<dl class="run">
  <dt>started</dt><dd>{{.Started}}</dd>
  <dt>wall time</dt><dd>{{.WallTime}}{{range .Phases}} · {{.Label}} {{.Value}}{{end}}</dd>
  {{- with .Meta.Runner}}<dt>runner</dt><dd>{{.}}</dd>{{end}}
  {{- with .Meta.Format}}<dt>table format</dt><dd>{{.}}</dd>{{end}}
  {{- if .Meta.Shards}}<dt>shards</dt><dd>{{.Meta.Shards}}</dd>{{end}}
  {{- with .Meta.Input}}<dt>input</dt><dd><code>{{.}}</code></dd>{{end}}
  {{- with .Meta.Output}}<dt>output</dt><dd><code>{{.}}</code></dd>{{end}}
</dl>
</div>
</div>
</section>

<section id="insights">
<h2>Insights</h2>
<p class="lead">The eight answers over the deduplicated tables joined on <code>ind</code>; ties are all kept. Hover a bar for its exact value.</p>
<div class="grid">
{{- range .Insights}}{{template "card" .}}{{end}}
</div>
</section>

<section id="quality">
<h2>Data quality</h2>
<p class="lead">What cleaning did to the records: rejects, duplicates, unparsable values and the nulls left in the clean tables.</p>
<div class="grid">
{{- range .Quality}}{{template "card" .}}{{end}}
</div>
</section>

{{- if .Queries}}
<section id="query">
<h2>Query the tables</h2>
<p class="lead">The run's tables ({{.Meta.Tables.Format}}{{with .Meta.Tables.Catalog}}, {{.}} catalog{{end}}) from the engines people use on a lake; any table name works in place of the first.</p>
<div class="grid">
{{- range .Queries}}
<article class="card span2" data-engine="{{.Engine}}">
<header><h3>{{.Engine}}</h3></header>
<p class="sub">{{.Note}}</p>
{{- with .Code}}<pre class="sql"><code>{{.}}</code></pre>{{end}}
</article>
{{- end}}
</div>
</section>
{{- end}}

<p class="foot">Written by <code>pinpipe batch</code> · one self-contained page: inline SVG and CSS, no scripts, nothing loaded from the network.</p>
</div>
</body>
</html>
{{define "card"}}
<article class="card span{{.Span}}"{{with .Insight}} data-insight="{{.}}"{{end}}{{with .Quality}} data-quality="{{.}}"{{end}}>
<header><h3>{{.Title}}</h3><span class="facts">{{.Facts}}</span></header>
<p class="sub">{{.Sub}}</p>
{{- if .Chart}}
<div class="plot{{if .Scroll}} scroll{{end}}">{{template "svg" .Chart}}</div>
{{- else}}
<p class="nodata">{{.NoData}}</p>
{{- end}}
<footer>{{.File}}</footer>
</article>
{{- end}}
{{define "svg"}}
<svg class="chart" role="img" aria-label="{{.Label}}" width="{{n .W}}" height="{{n .H}}" viewBox="0 0 {{n .W}} {{n .H}}">
{{- range .Back}}
<rect class="{{.Class}}" x="{{n .X}}" y="{{n .Y}}" width="{{n .W}}" height="{{n .H}}"/>
{{- end}}
{{- range .Lines}}
<line class="{{.Class}}" x1="{{n .X1}}" y1="{{n .Y1}}" x2="{{n .X2}}" y2="{{n .Y2}}"/>
{{- end}}
{{- range .Bars}}
<rect class="bar" x="{{n .X}}" y="{{n .Y}}" width="{{n .W}}" height="{{n .H}}" rx="2"{{with .Fill}} fill="{{.}}"{{end}}><title>{{.Title}}</title></rect>
{{- end}}
{{- range .Marks}}
<rect class="{{.Class}}" x="{{n .X}}" y="{{n .Y}}" width="{{n .W}}" height="{{n .H}}" rx="2"{{with .Fill}} fill="{{.}}"{{end}}>{{with .Title}}<title>{{.}}</title>{{end}}</rect>
{{- end}}
{{- range .Texts}}
<text class="{{.Class}}" x="{{n .X}}" y="{{n .Y}}" text-anchor="{{.Anchor}}"{{if .Rotate}} transform="rotate(-90 {{n .X}} {{n .Y}})"{{end}}>{{.Text}}{{with .Title}}<title>{{.}}</title>{{end}}</text>
{{- end}}
</svg>
{{- end}}
`
