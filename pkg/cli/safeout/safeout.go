// Package safeout is how kubectl entrypoint writes text that comes from API
// objects and annotations (names, label values, CEL expressions and their
// errors, condition messages) without letting it drive the terminal: Fprintf
// escapes its string arguments with internal/safetext, Lines keeps the line
// breaks of a message but indents them, and JSON and YAML keep every value
// while writing its control and bidirectional characters as escapes.
package safeout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
)

// Escaped is text already safe to print, as Lines makes it: Fprintf writes it
// as it is.
type Escaped string

// Lines escapes each line of s (trailing line breaks dropped) and joins them
// with a line break followed by indent: a message of several lines (errors
// joined, CEL's caret under an expression) keeps them, and none of its lines
// can pass for a line of the output's own.
func Lines(s, indent string) Escaped {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = safetext.Escape(l)
	}
	return Escaped(strings.Join(lines, "\n"+indent))
}

// Fprintf is fmt.Fprintf with each argument that is a string (of any string
// type), an error or a fmt.Stringer replaced by its text escaped with
// safetext.Escape; an Escaped argument is written as it is. Other arguments
// (numbers, byte slices) are formatted as fmt does. The format is the caller's
// and is not escaped.
func Fprintf(w io.Writer, format string, args ...any) (int, error) {
	escaped := make([]any, len(args))
	for i, a := range args {
		escaped[i] = escape(a)
	}
	return fmt.Fprintf(w, format, escaped...)
}

func escape(a any) any {
	if rv := reflect.ValueOf(a); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return a // fmt prints it, without calling its methods
	}
	switch v := a.(type) {
	case Escaped:
		return string(v)
	case string:
		return safetext.Escape(v)
	case error:
		return safetext.Escape(v.Error())
	case fmt.Stringer:
		return safetext.Escape(v.String())
	}
	if rv := reflect.ValueOf(a); rv.Kind() == reflect.String {
		return safetext.Escape(rv.String())
	}
	return a
}

// JSON is v as indented JSON (two spaces, as json.MarshalIndent writes it).
// encoding/json escapes the C0 controls; JSON also writes DEL, the C1 controls
// and the bidirectional formatting characters inside strings as \u escapes, so
// that a JSON reader gets the same values.
func JSON(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return escapeRunes(b), nil
}

// YAML is v as YAML, as sigs.k8s.io/yaml writes it (by way of JSON, here with
// the escapes of JSON, which its reader would otherwise refuse for DEL and the
// C1 controls). That escapes the control characters, but not the
// bidirectional formatting ones: when the text holds any, v is written again
// with each string that is not safe in double quotes, where YAML reads \u
// escapes, and those characters written so. The values are the same either way.
func YAML(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	j = escapeRunes(j)
	b, err := sigsyaml.JSONToYAML(j)
	if err != nil {
		return nil, err
	}
	if safeLines(b) {
		return b, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(j, &doc); err != nil {
		return nil, fmt.Errorf("re-reading the JSON: %w", err)
	}
	quoteUnsafe(&doc)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	enc.CompactSeqIndent() // "- " under the key, as sigs.k8s.io/yaml writes
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return escapeRunes(out.Bytes()), nil
}

// quoteUnsafe puts in double quotes every string scalar of n that is not safe,
// or that a YAML 1.1 reader (sigs.k8s.io/yaml's, kubectl's) would not read as
// that string ("yes", "1"), and leaves the style of the rest to the encoder
// (read from JSON, they are all quoted or in flow style). It sorts the keys of
// mappings, as sigs.k8s.io/yaml does.
func quoteUnsafe(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.MappingNode {
		pairs := make([][2]*yaml.Node, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			pairs = append(pairs, [2]*yaml.Node{n.Content[i], n.Content[i+1]})
		}
		slices.SortStableFunc(pairs, func(a, b [2]*yaml.Node) int { return strings.Compare(a[0].Value, b[0].Value) })
		for i, p := range pairs {
			n.Content[2*i], n.Content[2*i+1] = p[0], p[1]
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && !readsAsItself(n.Value) {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		quoteUnsafe(c)
	}
}

func readsAsItself(s string) bool {
	if !safetext.Safe(s) {
		return false
	}
	var v any
	return sigsyaml.Unmarshal([]byte(s), &v) == nil && v == s
}

// safeLines tells whether b holds nothing Escape would change but line breaks.
func safeLines(b []byte) bool {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if !safetext.Safe(string(line)) {
			return false
		}
	}
	return true
}

// escapeRunes writes each character of b that is not safe, line breaks aside,
// as a \u escape, which JSON strings and YAML double-quoted strings read; b is
// UTF-8, as the encoders write it.
func escapeRunes(b []byte) []byte {
	if safeLines(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != '\n' && !safetext.Safe(string(b[i:i+size])) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}
