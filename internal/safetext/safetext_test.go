package safetext

import (
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"service ns/db: no ready endpoint", "service ns/db: no ready endpoint"},
		{"héllo wörld ✓", "héllo wörld ✓"},
		{"a\x1b[2Jb", `a\x1b[2Jb`},
		{"line\nnext\rover\ttab", `line\nnext\rover\ttab`},
		{"bell\a del\x7f", `bell\a del\x7f`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"bidi \u202eevil\u202c", `bidi \u202eevil\u202c`},
		{"isolate \u2066x\u2069", `isolate \u2066x\u2069`},
		{"bad \xff utf8", `bad \xff utf8`},
		{"nul \x00", `nul \x00`},
	}
	for _, tt := range tests {
		got := Escape(tt.in)
		if got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !Safe(got) {
			t.Errorf("Escape(%q) = %q is not Safe", tt.in, got)
		}
		if Safe(tt.in) != (tt.in == tt.want) {
			t.Errorf("Safe(%q) = %v", tt.in, Safe(tt.in))
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("a\x1b[31mb\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if !Safe(got) || !utf8.ValidString(got) {
			t.Fatalf("Escape(%q) = %q still unsafe", s, got)
		}
		if Safe(s) && got != s {
			t.Fatalf("Escape(%q) changed safe text to %q", s, got)
		}
	})
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"this is too long", 10, "this is..."},
		{"ééééé", 8, "éé..."}, // 10 bytes; a cut at 5 would split an é
		{"abc", 2, ""},
	}
	for _, tt := range tests {
		if got := Truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
