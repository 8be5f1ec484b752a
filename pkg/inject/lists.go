package inject

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

// listChunk is how many items of a comma-separated annotation a spec parser gets
// at once. A parser keeps about 1 KiB of messages per bad item until it returns,
// so a 200 KiB annotation of 100,000 bad items parsed whole would hold some
// 100 MiB; parsed in chunks, it holds at most a chunk's worth.
const listChunk = 512

// parseChunked parses the comma-separated value of annotation key with parse (a
// spec parser), in chunks of listChunk items when it has more, and reports every
// problem as an item of the whole value. It returns the items, duplicates dropped
// as parse drops them, and whether there was no problem; nil when there was.
func parseChunked[T comparable](pl *planner, key string, parse func(string) ([]T, error)) ([]T, bool) {
	items, ok, _ := parseChunkedUntil(pl, key, parse, nil)
	return items, ok
}

// parseChunkedUntil is parseChunked that asks stop, when not nil, before each
// chunk but the first whether to go on: a value already refused for how many
// items it holds need not be read to its end. When stop ends the parse, ok is
// false, no items are returned, only the problems of the chunks read are
// reported, and written is how many items the whole value holds, duplicates
// included; otherwise written is 0.
func parseChunkedUntil[T comparable](pl *planner, key string, parse func(string) ([]T, error), stop func() bool) (items []T, ok bool, written int) {
	value := pl.ours[key]
	if strings.Count(value, ",") < listChunk {
		items, err := parse(value)
		if err != nil {
			pl.invalidValue(key, err)
			return nil, false, 0
		}
		return items, true, 0
	}
	var (
		out    []T
		seen   = make(map[T]bool)
		good   = true
		before = 0 // items in the chunks before this one
	)
	for rest := value; rest != ""; {
		if pl.ctx.Err() != nil {
			return nil, false, 0 // newPlan reports why
		}
		if before > 0 && stop != nil && stop() {
			return nil, false, strings.Count(value, ",") + 1
		}
		chunk := rest
		if end := nthComma(rest, listChunk); end >= 0 && strings.TrimSpace(rest[end+1:]) != "" {
			// A blank tail stays with this chunk, where it is the empty last item.
			chunk, rest = rest[:end], rest[end+1:]
		} else {
			rest = ""
		}
		items, err := parse(chunk)
		if err != nil {
			good = false
			single := "" // the item of a chunk of one, shown as it would be in the whole list
			if !strings.Contains(chunk, ",") {
				single = strings.TrimSpace(chunk)
			}
			pl.invalidChunk(key, value, single, before, err)
		}
		for _, item := range items {
			if !seen[item] {
				seen[item] = true
				out = append(out, item)
			}
		}
		before += strings.Count(chunk, ",") + 1
	}
	if !good {
		return nil, false, 0
	}
	return out, true, 0
}

// nthComma is the index of the n-th comma in s, or -1.
func nthComma(s string, n int) int {
	at := -1
	for range n {
		next := strings.IndexByte(s[at+1:], ',')
		if next < 0 {
			return -1
		}
		at += next + 1
	}
	return at
}

// invalidChunk records the problems a parser found in a chunk of the value of
// annotation key, after the first before items, as problems of the whole value.
// single is the item of a chunk of one item, as the whole value's parse shows it
// (a parser shows no item text when the value has a single item).
func (pl *planner) invalidChunk(key, value, single string, before int, err error) {
	valueErrs := spec.ValueErrors(err)
	if len(valueErrs) == 0 {
		pl.invalid(annotationPath(key), spec.WithName(annotationName(key), err).Error())
		return
	}
	for _, ve := range valueErrs {
		if pl.problems.full() {
			pl.problems.count(ReasonInvalidAnnotation)
			continue
		}
		whole := *ve
		whole.Name, whole.Value = annotationName(key), value
		if whole.Item > 0 {
			if whole.ItemText == "" { // a chunk of one item
				whole.ItemText = single
			}
			whole.Item += before
		}
		pl.invalid(annotationPath(key), whole.Error())
	}
}

// parseJSONChunked is parseChunked for an annotation holding a JSON array of
// objects: a valid array of more than listChunk items is parsed listChunk items
// at a time; anything else whole, which words what is wrong with it.
func parseJSONChunked[T any](pl *planner, key string, parse func(string) ([]T, error)) ([]T, bool) {
	items, ok, _ := parseJSONChunkedUntil(pl, key, parse, nil)
	return items, ok
}

// parseJSONChunkedUntil is parseJSONChunked that asks stop, as parseChunkedUntil
// does, whether to go on.
func parseJSONChunkedUntil[T any](pl *planner, key string, parse func(string) ([]T, error), stop func() bool) ([]T, bool, int) {
	value := pl.ours[key]
	var items []json.RawMessage
	if strings.Count(value, ",") >= listChunk && strings.HasPrefix(value, "[") {
		dec := json.NewDecoder(strings.NewReader(value))
		if dec.Decode(&items) != nil {
			items = nil
		} else if _, err := dec.Token(); err != io.EOF {
			items = nil
		}
	}
	if len(items) <= listChunk {
		out, err := parse(value)
		if err != nil {
			pl.invalidValue(key, err)
			return nil, false, 0
		}
		return out, true, 0
	}
	var (
		out   []T
		good  = true
		chunk bytes.Buffer
	)
	for start := 0; start < len(items); start += listChunk {
		if pl.ctx.Err() != nil {
			return nil, false, 0 // newPlan reports why
		}
		if start > 0 && stop != nil && stop() {
			return nil, false, len(items)
		}
		part := items[start:min(start+listChunk, len(items))]
		chunk.Reset()
		chunk.WriteByte('[')
		for i, item := range part {
			if i > 0 {
				chunk.WriteByte(',')
			}
			chunk.Write(item)
		}
		chunk.WriteByte(']')
		parsed, err := parse(chunk.String())
		if err != nil {
			good = false
			var single bytes.Buffer // the item of a chunk of one, shown as it would be in the whole array
			if len(part) == 1 && json.Compact(&single, part[0]) != nil {
				single.Reset()
			}
			pl.invalidChunk(key, value, single.String(), start, err)
		}
		out = append(out, parsed...)
	}
	if !good {
		return nil, false, 0
	}
	return out, true, 0
}
