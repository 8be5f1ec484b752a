package spec

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The Parse* functions serve the webhook too, so their messages must not name a
// variable; WithName adds whichever name the caller has.
func TestParseErrorsNameNoVariable(t *testing.T) {
	parsers := map[string]func(string) error{
		"ParseServiceList":         func(v string) error { _, err := ParseServiceList(v, "ns"); return err },
		"ParseObjectList":          func(v string) error { _, err := ParseObjectList(v, "ns"); return err },
		"ParseNames":               func(v string) error { _, err := ParseNames(v); return err },
		"ParsePaths":               func(v string) error { _, err := ParsePaths(v); return err },
		"ParseTCP":                 func(v string) error { _, err := ParseTCP(v); return err },
		"ParseHTTP":                func(v string) error { _, err := ParseHTTP(v); return err },
		"ParseJobsJSON":            func(v string) error { _, err := ParseJobsJSON(v, "ns"); return err },
		"ParsePodsJSON":            func(v string) error { _, err := ParsePodsJSON(v, "ns"); return err },
		"ParseCustomResourcesJSON": func(v string) error { _, err := ParseCustomResourcesJSON(v, "ns"); return err },
	}
	for name, parse := range parsers {
		err := parse("x,,")
		if err == nil {
			t.Errorf("%s accepted %q", name, "x,,")
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "DEPENDENCY") || !strings.HasPrefix(msg, "item ") && !strings.HasPrefix(msg, `"x,,"`) {
			t.Errorf("%s: message should start with the item or value: %s", name, msg)
		}
		if len(ValueErrors(err)) == 0 {
			t.Errorf("%s: no ValueError in %v", name, err)
		}
	}
}

func TestWithNameNamesEveryProblem(t *testing.T) {
	_, err := ParseServiceList("a,,b:c:d", "ns")
	const annotation = "annotation entrypoint.io/dependency-service"
	named := WithName(annotation, err)
	want := annotation + `: item 2 of "a,,b:c:d" is empty; expected [namespace:]name[#n],...` + "\n" +
		annotation + `: item 3 "b:c:d" of "a,,b:c:d" has more than one ':'; expected [namespace:]name[#n],...`
	if named.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", named, want)
	}
	for _, p := range ValueErrors(err) {
		if p.Name != "" {
			t.Errorf("WithName changed the original: %+v", p)
		}
	}
	if WithName("X", nil) != nil {
		t.Error("WithName(nil) is not nil")
	}
	plain := WithName("X", errors.New("boom"))
	if plain.Error() != "X: boom" {
		t.Errorf("WithName on a plain error = %q", plain)
	}
}

func TestParsersReturnNilForBlank(t *testing.T) {
	for _, v := range []string{"", "  ", "\t\n"} {
		s, err := ParseServiceList(v, "ns")
		n, err2 := ParseNames(v)
		j, err3 := ParseJobsJSON(v, "ns")
		if s != nil || n != nil || j != nil || err != nil || err2 != nil || err3 != nil {
			t.Errorf("blank %q parsed to %v %v %v (%v %v %v)", v, s, n, j, err, err2, err3)
		}
		if c := SplitCommand(v); c != nil {
			t.Errorf("SplitCommand(%q) = %#v, want nil", v, c)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	got := SplitCommand(" /bin/sh  -c\t'echo done' ")
	want := []string{"/bin/sh", "-c", "'echo", "done'"} // legacy: no quoting, as the original
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SplitCommand = %q, want %q", got, want)
	}
}

func TestQuote(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`{"a":1}`, "`{\"a\":1}`"},
		{"a\"\nb", `"a\"\nb"`},              // a newline cannot be backquoted
		{"xéyz", `"x"... (5 bytes in all)`}, // cut at 2 bytes, inside "é": cut before it
	}
	for _, c := range cases {
		limit := 200
		if c.in == "xéyz" {
			limit = 2
		}
		if got := quote(c.in, limit); got != c.want {
			t.Errorf("quote(%q, %d) = %s, want %s", c.in, limit, got, c.want)
		}
	}
}
