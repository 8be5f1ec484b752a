package celcheck

import (
	"context"
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"
)

// hostilePattern is the pattern of an attack seen on a cluster: about 36,000
// instructions once compiled, compiled again at every evaluation.
const hostilePattern = "(?:abcdefghijklmnopqrstuvwxyz0123456789){1000}"

// matchesCases are the rules of matches, for TestPrepare.
var matchesCases = []struct {
	name, expression string
	wantErr          string
}{
	{"matches, a member", `object.metadata.name.matches("^db-[0-9]+$")`, ""},
	{"matches, global", `matches(object.data.v, "v[0-9]+")`, ""},
	{"matches, with a leading dot", `.matches(object.data.v, "v[0-9]+")`, ""},
	{"matches in a loop", `object.items.exists(i, i.name.matches("^db-"))`, ""},
	{"one pattern five times counts once", strings.TrimSuffix(strings.Repeat(`object.data.x.matches("(?:ab){300}") && `, 5), " && "), ""},
	{"eight calls", strings.TrimSuffix(strings.Repeat(`object.data.x.matches("^a") || `, 8), " || "), ""},
	{"the hostile pattern 40 times", `object.data.x.matches("` + strings.Repeat(hostilePattern, 40) + `")`,
		"has a regular expression of 1,840 bytes, more than 256"},
	{"the hostile pattern", `object.data.x.matches("` + hostilePattern + `")`,
		"has a regular expression of over 36,002 instructions, more than 1,000: " + `"(?:abcdef`},
	{"the hostile pattern, global", `matches(object.data.x, "` + hostilePattern + `")`, "instructions, more than 1,000"},
	{"the hostile pattern twice", `object.data.x.matches("` + hostilePattern + hostilePattern + `")`, "instructions, more than 1,000"},
	{"nested repeats past Go's limit", `object.data.x.matches("((a{100}){100}){100}")`, "does not parse (invalid repeat count)"},
	{"nested repeats within Go's limit", `object.data.x.matches("((ab){30}){30}")`, "instructions, more than 1,000"},
	{"short but large", `object.data.x.matches("(?:x?){600}")`, "instructions, more than 1,000"},
	{"large together", `object.data.x.matches("(?:ab){300}") && object.data.y.matches("(?:cd){300}")`,
		"has regular expressions of ~1,204 instructions together, more than 1,000"},
	{"pattern from a field", `object.data.x.matches(object.data.y)`, "calls matches with a pattern that is not a string literal"},
	{"pattern from a field, global", `matches(object.data.x, object.data.y)`, "not a string literal"},
	{"pattern from a loop variable", `object.items.all(i, object.data.x.matches(i))`, "not a string literal"},
	{"pattern a concatenation", `object.data.x.matches("^a" + "b$")`, "not a string literal"},
	{"pattern of bytes", `object.data.x.matches(b"^a")`, "not a string literal"},
	{"pattern too long", `object.data.x.matches("` + strings.Repeat("a", MaxRegexBytes+1) + `")`, "of 257 bytes, more than 256"},
	{"pattern does not parse", `object.data.x.matches("(a")`, `does not parse (missing closing )): "(a"`},
	{"too many calls", strings.TrimSuffix(strings.Repeat(`object.data.x.matches("^a") || `, 9), " || "),
		"calls matches 9 times, more than 8"},
	{"three arguments", `object.data.x.matches("a", "b")`, "calls matches with 3 arguments"},
	{"one argument", `matches("a")`, "calls matches with 1 arguments"},
}

// The estimate is never under what regexp/syntax compiles, and not far over.
func TestRegexSizeEstimate(t *testing.T) {
	patterns := []string{
		"", "a", "^db-[0-9]+$", "v[0-9]+", "(?i)hello", `\bword\b`, "(a|b|c)*d", "abc|abd|xyz",
		"a{0}", "a{2,5}", "a{3,}", "x{0,}", "(?:x+){1,}", "(?:a*)*", "(?:x?){400}z", "(?:ab){300}",
		"((ab){5}){6}", "[[:alpha:]]{10,20}", `^(?:[a-z0-9-]{1,63}\.)+[a-z]{2,}$`, "(?s).*", "(?U)a+?b*?",
	}
	for _, pattern := range patterns {
		t.Run(pattern, func(t *testing.T) {
			re, err := syntax.Parse(pattern, syntax.Perl)
			if err != nil {
				t.Fatal(err)
			}
			prog, err := syntax.Compile(re.Simplify())
			if err != nil {
				t.Fatal(err)
			}
			got, err := regexSize(pattern)
			if err != nil {
				t.Fatalf("regexSize: %v", err)
			}
			if actual := len(prog.Inst); got < actual || got > actual*3/2+2 {
				t.Fatalf("regexSize = %d, compiled to %d instructions", got, actual)
			}
		})
	}
}

// A program compiles its patterns when it is prepared: an evaluation compiles
// none.
func TestMatchesCompiledOnce(t *testing.T) {
	const pattern = "^db-[0-9]+$"
	object := map[string]any{"metadata": map[string]any{"name": "db-12"}}
	allocs := func(expression string) float64 {
		p, err := Prepare(expression)
		if err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(100, func() {
			if ok, err := p.Eval(context.Background(), object); !ok || err != nil {
				t.Fatalf("Eval(%q) = %v, %v", expression, ok, err)
			}
		})
	}
	plain := allocs(`object.metadata.name.startsWith("db-")`)
	matching := allocs(`object.metadata.name.matches("` + pattern + `")`)
	compiling := testing.AllocsPerRun(100, func() { regexp.MustCompile(pattern) })
	t.Logf("allocations: an evaluation with matches %.0f, one with startsWith %.0f, a compilation of %q %.0f", matching, plain, pattern, compiling)
	if matching-plain >= compiling/2 {
		t.Fatalf("an evaluation with matches allocates %.0f times, one without %.0f: it compiles its pattern (%.0f allocations)",
			matching, plain, compiling)
	}
}

// A call of matches pays for its work in cost units, and does not start a match
// that would cost more than the limit.
func TestMatchesCost(t *testing.T) {
	long := strings.Repeat("z", 100_000)
	tests := []struct {
		name, expression string
		object           map[string]any
		want             bool
		wantErr          string
	}{
		{"a long string, a small pattern", `object.x.matches("^z+$")`, map[string]any{"x": long}, true, ""},
		{"a long string, a large pattern", `object.x.matches("(?:x?){400}z")`, map[string]any{"x": long}, false,
			"a string of 100000 bytes is too long for regular expression"},
		{"a loop of long strings", `object.items.all(s, s.matches("^z+$"))`, map[string]any{"items": repeat(long, 20)},
			false, "cost limit exceeded"},
		{"a loop of short strings", `object.items.all(s, s.matches("^z+$"))`, map[string]any{"items": []any{"z", "zz", "zzz"}}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Prepare(tt.expression)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Eval(context.Background(), tt.object)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Eval = %v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Eval = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestThousands(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {36002, "36,002"}, {1234567, "1,234,567"}, {-1000, "-1,000"}}
	for _, tt := range tests {
		if got := thousands(tt.n); got != tt.want {
			t.Errorf("thousands(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func repeat(s string, n int) []any {
	l := make([]any, n)
	for i := range l {
		l[i] = s
	}
	return l
}
