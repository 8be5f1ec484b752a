package safeout

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
)

const hostile = "x\x1b[2J\r\u202e\u009b\x9b\ny"

type named string

type stringer struct{}

func (stringer) String() string { return "s\x1b" }

func TestFprintf(t *testing.T) {
	tests := []struct {
		name   string
		format string
		args   []any
		want   string
	}{
		{"safe text unchanged", "%s waits for %s (%d)\n", []any{"deployment ns/web", "service ns/db", 2}, "deployment ns/web waits for service ns/db (2)\n"},
		{"string", "owner %s\n", []any{hostile}, `owner x\x1b[2J\r\u202e\u009b\x9b\ny` + "\n"},
		{"string type", "%s=%s", []any{named("Ready\r"), named("True")}, `Ready\r=True`},
		{"error", "error: %v", []any{errors.New("bad\u202e")}, `error: bad\u202e`},
		{"stringer", "%s", []any{stringer{}}, `s\x1b`},
		{"escaped as it is", "problem: %s\n", []any{Lines("a\x1b\nb", "  ")}, "problem: a\\x1b\n  b\n"},
		{"bytes as they are", "%s", []any{[]byte("{\n}")}, "{\n}"},
		{"tab in a table cell", "%s\t%s\n", []any{"a\tb", "c"}, "a\\tb\tc\n"},
		{"nil error and stringer", "%v %v", []any{error(nil), (*stringer)(nil)}, "<nil> <nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if _, err := Fprintf(&b, tt.format, tt.args...); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got %q, want %q", b.String(), tt.want)
			}
		})
	}
}

func TestLines(t *testing.T) {
	tests := []struct{ in, indent, want string }{
		{"one line", "  ", "one line"},
		{"first\nsecond\n", "    ", "first\n    second"},
		{"expression \x1b[2J does not compile\n | object.x\u202e\n | ..^", "  ", "expression \\x1b[2J does not compile\n   | object.x\\u202e\n   | ..^"},
		{"a\r\nb", "", "a\\r\nb"},
	}
	for _, tt := range tests {
		got := string(Lines(tt.in, tt.indent))
		if got != tt.want {
			t.Errorf("Lines(%q, %q) = %q, want %q", tt.in, tt.indent, got, tt.want)
		}
		for _, line := range strings.Split(got, "\n") {
			if !safetext.Safe(line) {
				t.Errorf("Lines(%q): line %q is not safe", tt.in, line)
			}
		}
	}
}

type report struct {
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels,omitempty"`
	Count   int               `json:"count"`
	Message string            `json:"message,omitempty"`
	Items   []string          `json:"items"`
}

var values = []struct {
	name string
	v    report
}{
	{"safe", report{Name: "pod ns/web", Labels: map[string]string{"app": "web"}, Count: 2, Items: []string{"true", "1", "a: b"}}},
	{"control characters", report{Name: "pod ns/" + hostile, Message: "del\x7f nul\x00 tab\t", Items: []string{"\u009b", "yes"}}},
	{"bidirectional only", report{Name: "owner \u202eevil\u202c", Labels: map[string]string{"k\u2066": "v\u200f"}, Items: []string{"\u061c", "a: \u2069b"}}},
	{"long line with bidi", report{Message: strings.Repeat("word ", 40) + "\u202e" + strings.Repeat(" more", 30)}},
}

// The value, as encoding/json or sigs.k8s.io/yaml read it back (invalid UTF-8
// as U+FFFD, as encoding/json writes it).
func roundTrip(t *testing.T, unmarshal func([]byte, any) error, b []byte) report {
	t.Helper()
	var got report
	if err := unmarshal(b, &got); err != nil {
		t.Fatalf("reading back: %v\n%s", err, b)
	}
	return got
}

func wantBack(v report) report {
	v.Name = strings.ToValidUTF8(v.Name, "\ufffd")
	return v
}

func checkSafe(t *testing.T, b []byte) {
	t.Helper()
	if !utf8.Valid(b) {
		t.Errorf("not UTF-8: %q", b)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !safetext.Safe(line) {
			t.Errorf("line not safe: %q", line)
		}
	}
}

func TestJSON(t *testing.T) {
	for _, tt := range values {
		t.Run(tt.name, func(t *testing.T) {
			b, err := JSON(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			checkSafe(t, b)
			if got := roundTrip(t, json.Unmarshal, b); !reflect.DeepEqual(got, wantBack(tt.v)) {
				t.Errorf("read back %+v, want %+v", got, tt.v)
			}
			if want, _ := json.MarshalIndent(tt.v, "", "  "); safeLines(want) && !bytes.Equal(b, want) {
				t.Errorf("safe JSON changed:\n%s\nwant\n%s", b, want)
			}
		})
	}
}

func TestYAML(t *testing.T) {
	for _, tt := range values {
		t.Run(tt.name, func(t *testing.T) {
			b, err := YAML(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			checkSafe(t, b)
			if got := roundTrip(t, func(b []byte, v any) error { return sigsyaml.Unmarshal(b, v) }, b); !reflect.DeepEqual(got, wantBack(tt.v)) {
				t.Errorf("read back %+v, want %+v\n%s", got, tt.v, b)
			}
			if want, err := sigsyaml.Marshal(tt.v); err == nil && safeLines(want) && !bytes.Equal(b, want) {
				t.Errorf("safe YAML changed:\n%s\nwant\n%s", b, want)
			}
		})
	}
}
