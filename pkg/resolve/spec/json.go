package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// parseJSONArray parses value as a JSON array of objects, parsing each item with
// parseItem, which returns the problems of an item it rejects. A blank value and
// "[]" are no items. Every problem of every item is reported.
func parseJSONArray[T any](value, expected string, parseItem func(item json.RawMessage) (T, []string)) ([]T, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, nil
	}
	whole := func(problem string) error {
		return &ValueError{Value: value, Problem: problem, Expected: expected}
	}
	if value[0] != '[' {
		return nil, whole("is not a JSON array")
	}
	dec := json.NewDecoder(strings.NewReader(value))
	var items []json.RawMessage
	if err := dec.Decode(&items); err != nil {
		return nil, whole("is not valid JSON (" + describeSyntaxError(err) + ")")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, whole("has more after the closing ']' of the JSON array")
	}
	var (
		out      []T
		problems []error
	)
	for i, item := range items {
		v, itemProblems := parseItem(item)
		for _, p := range itemProblems {
			problems = append(problems, &ValueError{
				Value:    value,
				Item:     i + 1,
				ItemText: shownItem(compactJSON(item), len(items)),
				Problem:  p,
				Expected: expected,
			})
		}
		if len(itemProblems) == 0 {
			out = append(out, v)
		}
	}
	if len(problems) > 0 {
		return nil, joinErrors(problems)
	}
	return out, nil
}

// decodeObject decodes raw, which must be a JSON object, into dst, a pointer to a
// struct. Keys must match dst's json tags exactly: encoding/json would accept
// "requireSamenode" for "requireSameNode", but a key spelled differently from the
// documented one is almost always a mistake, and for an annotation it is better
// refused than silently reinterpreted. where names the object in messages ("" for
// the item itself, "fields[2]" for a nested one).
func decodeObject(raw json.RawMessage, dst any, where string) []string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		if where == "" {
			return []string{"is not a JSON object"}
		}
		return []string{"has " + where + ", which is not a JSON object"}
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(raw, &keys); err != nil {
		return []string{"is not valid JSON (" + describeSyntaxError(err) + ")"}
	}
	allowed := jsonKeys(reflect.TypeOf(dst).Elem())
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if allowed[k] {
			continue
		}
		p := "has unknown field " + quote(joinPath(where, k), maxQuotedItem)
		for a := range allowed {
			if strings.EqualFold(a, k) {
				p += " (did you mean " + strconv.Quote(a) + "?)"
			}
		}
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return problems
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return []string{"has " + quote(joinPath(where, typeErr.Field), maxQuotedItem) +
				" holding a JSON " + typeErr.Value + " where " + describeJSONType(typeErr.Type) + " is expected"}
		}
		return []string{"could not be decoded (" + strings.TrimPrefix(err.Error(), "json: ") + ")"}
	}
	return nil
}

// jsonKeys returns the keys a struct's json tags name.
func jsonKeys(t reflect.Type) map[string]bool {
	keys := make(map[string]bool, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}

func joinPath(where, field string) string {
	if where == "" {
		return field
	}
	return where + "." + field
}

// describeJSONType names, in JSON terms, what a Go type accepts.
func describeJSONType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Map:
		if t.Elem().Kind() == reflect.String {
			return "an object of strings"
		}
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct:
		return "an object"
	}
	return t.String()
}

// describeSyntaxError words a JSON syntax error without Go's "json: " prefix.
func describeSyntaxError(err error) string {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return syntaxErr.Error() + " at byte " + strconv.FormatInt(syntaxErr.Offset, 10)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "it ends too early"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// compactJSON returns raw without insignificant blanks, for quoting in messages.
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// encodeJSON encodes v, which holds only strings, maps of strings and JSON a
// parser checked, compactly and without HTML escaping (a URL's "&" stays "&").
func encodeJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("spec: encoding parsed dependencies: " + err.Error())
	}
	return strings.TrimSuffix(b.String(), "\n")
}
