package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMECommands parses every pinpipe command in the code blocks of
// README.md and runners/README.md with the flags the command really has
// (its own, the common ones and Beam's), without running it, so that the
// docs cannot drift from the CLI.
func TestREADMECommands(t *testing.T) {
	var n int
	for _, doc := range []string{"README.md", filepath.Join("runners", "README.md")} {
		b, err := os.ReadFile(filepath.Join("..", "..", doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range docCommands(string(b)) {
			n++
			t.Logf("%s:%d: pinpipe %q", doc, c.line, c.args)
			if err := parseCommand(c.args); err != nil {
				t.Errorf("%s:%d: pinpipe %s: %v", doc, c.line, strings.Join(c.args, " "), err)
			}
		}
	}
	// The check itself: a flag a command does not have, a value its flag
	// refuses, an unknown command.
	for _, bad := range [][]string{{"batch", "--inptu=x"}, {"batch", "--shards=many"}, {"stream", "--checkpointing-interval=1"}, {"bacth"}, {"batch", "extra"}} {
		if parseCommand(bad) == nil {
			t.Errorf("pinpipe %q parsed", bad)
		}
	}
	if n < 15 {
		t.Errorf("found %d pinpipe commands in the READMEs; the extraction is broken", n)
	}
}

// docCommand is a pinpipe command found in a document: its arguments
// after "pinpipe" and the line it starts on.
type docCommand struct {
	args []string
	line int
}

var (
	fence       = regexp.MustCompile("^\\s*```")
	placeholder = regexp.MustCompile(`<[^<>]*>`)
	comment     = regexp.MustCompile(`(^|\s)#.*$`)
	inline      = regexp.MustCompile("`pinpipe ([^`]*)`")
)

// docCommands finds the pinpipe commands in the fenced code blocks of a
// Markdown document (continuation lines joined, comments dropped, a
// <placeholder> taken as a value, [--optional] flags as given) and those
// with flags in its inline code.
func docCommands(doc string) []docCommand {
	var cmds []docCommand
	in, joined, start := false, "", 0
	for i, line := range strings.Split(doc, "\n") {
		if fence.MatchString(line) {
			in = !in
			continue
		}
		if !in {
			// Inline: `pinpipe cmd --flag ...` (with "..." for what is left out).
			for _, m := range inline.FindAllStringSubmatch(line, -1) {
				if strings.Contains(m[1], "--") && !strings.Contains(m[1], "<command>") {
					var args []string
					for _, w := range shellWords(m[1]) {
						if w != "..." {
							args = append(args, w)
						}
					}
					cmds = append(cmds, docCommand{args, i + 1})
				}
			}
			continue
		}
		line = strings.TrimSpace(comment.ReplaceAllString(line, ""))
		if joined == "" {
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			joined += cont + " "
			continue
		}
		joined += line
		text := placeholder.ReplaceAllString(joined, "X")
		joined = ""
		for _, seg := range regexp.MustCompile(`\|\||&&|[|;&]`).Split(text, -1) {
			words := shellWords(seg)
			for j, w := range words {
				if w == "pinpipe" || strings.HasSuffix(w, "/pinpipe") {
					args := words[j+1:]
					for k, a := range args {
						args[k] = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
					}
					cmds = append(cmds, docCommand{args, start})
					break
				}
			}
		}
	}
	return cmds
}

// shellWords splits s into words as a shell would, for the quoting the
// READMEs use ('...' and "...").
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// parseCommand parses `pinpipe args...` as runMain does, without running
// the command: the command must exist and every flag be one it has, with a
// value it takes.
func parseCommand(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("no command")
	}
	name, _, args, ok := findCommand(args)
	if !ok {
		return fmt.Errorf("unknown command %q", name)
	}
	fs := commandFlags(name)
	// Beam's flags (and the runners'), as every command accepts them.
	flag.CommandLine.VisitAll(func(f *flag.Flag) {
		if !strings.HasPrefix(f.Name, "test.") && fs.Lookup(f.Name) == nil {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s", flagError(err, fs))
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return nil
}
