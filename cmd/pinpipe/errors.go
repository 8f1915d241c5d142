package main

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
)

// dofnFailed is how Beam introduces the error a DoFn returned.
var dofnFailed = regexp.MustCompile(`^DoFn\[[^\]]*\] failed:\s*`)

// rootCause is the one line a failed command prints for an error: for a
// Beam job, the error its DoFn returned, without the plan the runner dumps
// around it (tens of lines, kilobytes of coders); any error's lines joined
// into one, repeated ones left out, and a PostgreSQL client's refused TLS
// attempt left out when a later attempt says what went wrong.
func rootCause(msg string) string {
	if i := strings.LastIndex(msg, "caused by:"); i >= 0 {
		msg = msg[i+len("caused by:"):]
	} else if i := strings.Index(msg, "\n1: "); i >= 0 && strings.Contains(msg[:i], "Plan[") {
		msg = msg[:i] // a plan without a cause: the line before it
	}
	msg = dofnFailed.ReplaceAllString(strings.TrimSpace(msg), "")
	var lines []string
	seen := map[string]bool{}
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "goroutine ") {
			break // a panic's stack: at --log-level=debug
		}
		if l == "" || seen[l] {
			continue
		}
		seen[l] = true
		lines = append(lines, l)
	}
	if len(lines) > 2 {
		kept := lines[:1]
		for _, l := range lines[1:] {
			if !strings.HasSuffix(l, "tls error: server refused TLS connection") {
				kept = append(kept, l)
			}
		}
		lines = kept
	}
	if len(lines) == 0 {
		return "unknown error"
	}
	out := lines[0]
	for i, l := range lines[1:] {
		sep := "; "
		if i == 0 && strings.HasSuffix(out, ":") {
			sep = " "
		}
		out += sep + l
	}
	return out
}

// bundleFailures are the runners' reports of a failed bundle or job, which
// the command's one line tells.
var bundleFailures = map[string]bool{
	"Prism received bundle error from worker response": true,
	"stage.Execute aborting due to bundle error":       true,
	"Bundle Failed.": true,
	"job failed":     true,
}

// planDump reports text holding a Beam plan dump or a bundle's failure.
func planDump(s string) bool {
	return strings.Contains(s, "caused by:") || strings.Contains(s, "while executing") && strings.Contains(s, "Plan[")
}

// quietPlans is a slog handler that logs the runners' reports of a failed
// bundle (each with the plan dumped, kilobytes) at debug level: the
// command prints the cause once, in one line, when the job fails.
type quietPlans struct{ slog.Handler }

func (h quietPlans) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug {
		dump := bundleFailures[r.Message] || planDump(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			dump = dump || planDump(a.Value.String())
			return !dump
		})
		if dump {
			if !h.Handler.Enabled(ctx, slog.LevelDebug) {
				return nil
			}
			r.Level = slog.LevelDebug
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietPlans) WithAttrs(as []slog.Attr) slog.Handler {
	return quietPlans{h.Handler.WithAttrs(as)}
}

func (h quietPlans) WithGroup(name string) slog.Handler {
	return quietPlans{h.Handler.WithGroup(name)}
}
