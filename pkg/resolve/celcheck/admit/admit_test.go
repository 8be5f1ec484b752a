package admit

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/celcheck"
	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/pkg/resolve/spec"
)

func TestCompile(t *testing.T) {
	tests := []struct {
		name, expression string
		wantErr          string // "" when it compiles
	}{
		{"comparison", "object.status.readyReplicas >= 2", ""},
		{"string field", `object.data.mode == "ready"`, ""},
		{"has macro", `has(object.data) && "mode" in object.data`, ""},
		{"one loop", `object.status.conditions.exists(c, c.type == "Ready" && c.status == "True")`, ""},
		{"syntax error", "object.status.readyReplicas >=", "does not compile"},
		{"undeclared variable", "self.status.ready", "does not compile"},
		{"not a bool", "object.status.readyReplicas + 1", "not bool"},
		{"dyn, not bool", "object.spec.paused", "not bool"},
		{"string result", `"yes"`, "not bool"},
		{"too long", "true || " + strings.Repeat("true || ", spec.MaxCELExpressionBytes/8) + "true", "bytes long"},
		{"loop in a loop", "object.data.all(k, object.data.all(l, k != l || k == l))", "may cost"},
		{"loops three deep", "object.a.all(x, object.b.all(y, object.c.all(z, x == y && y == z)))", "may cost"},
		{"deep nesting", strings.Repeat("(", 150) + "true" + strings.Repeat(")", 150), "does not compile"},
		{"matches", `object.metadata.name.matches("^db-[0-9]+$")`, ""},
		{"matches, global", `matches(object.data.v, "v[0-9]+")`, ""},
		{"hostile pattern 40 times", `object.data.x.matches("` + strings.Repeat(hostilePattern, 40) + `")`, "more than 256"},
		{"hostile pattern", `object.data.x.matches("` + hostilePattern + `")`, "instructions, more than 1,000"},
		{"nested repeats", `object.data.x.matches("((a{100}){100}){100}")`, "regular expression that does not parse"},
		{"nested repeats Go's parser allows", `object.data.x.matches("((ab){30}){30}")`, "instructions, more than 1,000"},
		{"pattern not a literal", `object.data.x.matches(object.data.y)`, "not a string literal"},
		{"pattern too long", `object.data.x.matches("` + strings.Repeat("a", celcheck.MaxRegexBytes+1) + `")`, "more than 256"},
		{"too many calls of matches", strings.TrimSuffix(strings.Repeat(`object.data.x.matches("^a") || `, 9), " || "), "more than 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.expression)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Compile(%q) = %v, want no error", tt.expression, err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("Compile(%q) compiled, want an error with %q", tt.expression, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("Compile(%q) = %v, want an error with %q", tt.expression, err, tt.wantErr)
			case err == nil && p.Expression() != tt.expression:
				t.Fatalf("Expression() = %q, want %q", p.Expression(), tt.expression)
			}
		})
	}
}

// hostilePattern compiles to about 36,000 instructions.
const hostilePattern = "(?:abcdefghijklmnopqrstuvwxyz0123456789){1000}"

// Refusing a hostile pattern costs little memory: before the rules of matches,
// such an expression compiled, and each evaluation compiled its pattern again
// (over 300 MiB for the first case).
func TestRefusingAHostileRegexAllocatesLittle(t *testing.T) {
	const maxAlloc = 8 << 20
	tests := []struct{ name, expression string }{
		{"the pattern 40 times", `object.data.x.matches("` + strings.Repeat(hostilePattern, 40) + `")`},
		{"the pattern 5 times", `object.data.x.matches("` + strings.Repeat(hostilePattern, 5) + `")`},
		{"the call 20 times", strings.TrimSuffix(strings.Repeat(`object.data.x.matches("`+hostilePattern+`") || `, 20), " || ")},
	}
	object := map[string]any{"data": map[string]any{"x": "abc"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			p, err := Compile(tt.expression)
			if err == nil {
				// What the expression would cost once admitted.
				_, _ = p.Eval(context.Background(), object)
			}
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Errorf("Compile succeeded, want an error")
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			if alloc > maxAlloc {
				t.Errorf("Compile (and an evaluation, if it compiled) allocated %d MiB, want at most %d", alloc>>20, maxAlloc>>20)
			}
			t.Logf("%d KiB allocated", alloc>>10)
		})
	}
}

func TestCache(t *testing.T) {
	var c Cache
	tests := []struct {
		name, expression string
		wantErr          bool
	}{
		{"compiles", "object.a == 1", false},
		{"again", "object.a == 1", false},
		{"refused", "object.a", true},
		{"refused again", "object.a", true},
	}
	first := map[string]*celcheck.Program{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := c.Program(tt.expression)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Program(%q) = %v, want error %v", tt.expression, err, tt.wantErr)
			}
			if prev, ok := first[tt.expression]; ok && prev != p {
				t.Fatalf("Program(%q) compiled again", tt.expression)
			}
			first[tt.expression] = p
		})
	}
}

// countingCache is a Cache of size entries that counts its compilations by
// expression.
func countingCache(size int) (*Cache, func(string) int) {
	var mu sync.Mutex
	counts := map[string]int{}
	c := &Cache{size: size, compile: func(expression string) (*celcheck.Program, error) {
		mu.Lock()
		counts[expression]++
		mu.Unlock()
		return Compile(expression)
	}}
	return c, func(expression string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[expression]
	}
}

// The cache keeps the expressions used last, refused ones too.
func TestCacheIsBounded(t *testing.T) {
	type step struct {
		expression string
		wantCount  int // compilations of it so far
	}
	tests := []struct {
		name  string
		size  int
		steps []step
	}{
		{"within its size", 3, []step{{"object.a == 1", 1}, {"object.b == 1", 1}, {"object.a == 1", 1}, {"object.b == 1", 1}}},
		{"forgets the least recently used", 2, []step{
			{"object.a == 1", 1}, {"object.b == 1", 1}, {"object.a == 1", 1},
			{"object.c == 1", 1}, // b goes
			{"object.a == 1", 1}, {"object.b == 1", 2},
		}},
		{"errors count", 2, []step{
			{"object.a", 1}, {"object.a", 1}, {"object.b == 1", 1}, {"object.c == 1", 1}, {"object.a", 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, count := countingCache(tt.size)
			for i, s := range tt.steps {
				_, _ = c.Program(s.expression)
				if n := count(s.expression); n != s.wantCount {
					t.Fatalf("step %d: %q compiled %d times, want %d", i, s.expression, n, s.wantCount)
				}
				if n := c.programs.Len(); n > tt.size {
					t.Fatalf("step %d: %d expressions kept, more than %d", i, n, tt.size)
				}
			}
		})
	}
	var c Cache
	for i := range maxCached + 10 {
		_, _ = c.get(fmt.Sprint(i)) // makes the LRU
		c.programs.Add(fmt.Sprint(i), cached{})
	}
	if n := c.programs.Len(); n != maxCached {
		t.Fatalf("the zero Cache keeps %d expressions, want %d", n, maxCached)
	}
}

// Many asking at once for an expression compile it once, and a compilation
// under way holds no one asking for another expression.
func TestCacheConcurrent(t *testing.T) {
	const slow, callers = "object.slow == 1", 32
	var compiles atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	c := &Cache{compile: func(expression string) (*celcheck.Program, error) {
		if expression == slow {
			if compiles.Add(1) == 1 {
				close(started)
			}
			<-release
		}
		return Compile(expression)
	}}
	programs := make([]*celcheck.Program, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			p, err := c.Program(slow)
			if err != nil {
				t.Errorf("Program(%q): %v", slow, err)
			}
			programs[i] = p
		})
	}
	<-started
	// While slow compiles, other expressions compile and come from the cache.
	for range 2 {
		if _, err := c.Program("object.fast == 1"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // time for the callers to ask
	close(release)
	wg.Wait()
	if n := compiles.Load(); n != 1 {
		t.Fatalf("%q compiled %d times, want once", slow, n)
	}
	for i, p := range programs {
		if p == nil || p != programs[0] {
			t.Fatalf("caller %d got program %p, caller 0 %p", i, p, programs[0])
		}
	}
}

func TestCheck(t *testing.T) {
	refs := []spec.CELRef{{Expression: "object.a == 1"}, {Expression: "object.a"}, {Expression: "true"}, {Expression: "("}}
	got := Check(refs)
	if len(got) != 2 || got[1] == nil || got[3] == nil {
		t.Fatalf("Check = %v, want problems at 1 and 3", got)
	}
}
