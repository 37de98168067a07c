// Package tap writes Test Anything Protocol (version 13) output.
//
// A stand-in for github.com/mndrix/tap-go, the one import of runtime-tools' validation suite that Debian
// does not package (and this machine can fetch from nowhere else). Written for brisk's
// scripts/runtime-tools/fetch.sh from the TAP 13 specification and the calls the suite makes: New,
// Header, Ok, Pass, Fail, Skip, Todo, Count, AutoPlan, Diagnostic, Diagnosticf, YAML. The YAML block is
// written as indented JSON, which is valid YAML (TAP 13 only asks for a YAML document between
// "---" and "...").
package tap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// T is one TAP stream.
type T struct {
	// Shared with the T that Todo returns: one stream, one numbering.
	nextTestNumber *int
	// TODO marks the following test points "# TODO" (failures that do not count).
	TODO bool
	// Writer receives the stream; os.Stdout when nil.
	Writer io.Writer
}

// New starts a stream whose first test point is number 1.
func New() *T {
	n := 1
	return &T{nextTestNumber: &n}
}

// Todo returns a T writing to the same stream whose test points are marked "# TODO".
func (t *T) Todo() *T {
	todo := *t
	todo.TODO = true
	return &todo
}

func (t *T) printf(format string, a ...interface{}) {
	w := t.Writer
	if w == nil {
		w = os.Stdout
	}
	fmt.Fprintf(w, format, a...)
}

// Header writes the version line and, when the number of test points is known (> 0), the plan.
func (t *T) Header(testCount int) {
	t.printf("TAP version 13\n")
	if testCount > 0 {
		t.printf("1..%d\n", testCount)
	}
}

// Ok writes one test point, passing when test is true.
func (t *T) Ok(test bool, description string) {
	status := "ok"
	if !test {
		status = "not ok"
	}
	directive := ""
	if t.TODO {
		directive = " # TODO"
	}
	t.printf("%s %d - %s%s\n", status, *t.nextTestNumber, oneLine(description), directive)
	*t.nextTestNumber++
}

// Pass writes a passing test point.
func (t *T) Pass(description string) { t.Ok(true, description) }

// Fail writes a failing test point.
func (t *T) Fail(description string) { t.Ok(false, description) }

// Skip writes count skipped test points.
func (t *T) Skip(count int, description string) {
	for i := 0; i < count; i++ {
		t.printf("ok %d # SKIP %s\n", *t.nextTestNumber, oneLine(description))
		*t.nextTestNumber++
	}
}

// Count is the number of test points written so far.
func (t *T) Count() int { return *t.nextTestNumber - 1 }

// AutoPlan writes the plan for the test points written so far (a plan at the end of the stream).
func (t *T) AutoPlan() { t.printf("1..%d\n", t.Count()) }

// Diagnostic writes a comment line (each line of message prefixed with "# ").
func (t *T) Diagnostic(message string) {
	t.printf("# %s\n", strings.ReplaceAll(message, "\n", "\n# "))
}

// Diagnosticf is Diagnostic with a format.
func (t *T) Diagnosticf(format string, a ...interface{}) { t.Diagnostic(fmt.Sprintf(format, a...)) }

// YAML writes a YAML block describing the previous test point.
func (t *T) YAML(message interface{}) error {
	b, err := json.MarshalIndent(message, "  ", "  ")
	if err != nil {
		return err
	}
	t.printf("  ---\n  %s\n  ...\n", b)
	return nil
}

// A description must stay on the test point's line; a "#" would start a directive.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "#", "\\#")
}
