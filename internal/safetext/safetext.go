// Package safetext makes text from API objects and annotations safe to show:
// names, messages and expressions written by whoever created a pod reach
// terminals (kubectl entrypoint), pod conditions and Events, where a control
// character could move the cursor, rewrite what was printed before it, or
// hide text (bidirectional overrides).
package safetext

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Escape returns s with every control character (C0, DEL, C1), every
// bidirectional formatting character and every byte that is not UTF-8 written
// as a Go escape (\n, \x1b, \u202e); printable text, spaces included, is
// unchanged. It allocates only when something needs escaping.
func Escape(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[i])&0xF, 16))
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r) // 'x' with its escape inside
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Safe tells whether Escape would leave s as it is.
func Safe(s string) bool { return firstUnsafe(s) < 0 }

func firstUnsafe(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
		if unsafeRune(r) {
			return i
		}
	}
	return -1
}

func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7F, r >= 0x80 && r <= 0x9F:
		return true
	case r >= 0x200E && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069, r == 0x061C:
		// Bidirectional marks, embeddings, overrides and isolates.
		return true
	}
	return false
}

// Truncate cuts s to at most n bytes, ending in "..." when it cut, never inside
// a UTF-8 sequence.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < len("...") {
		return s[:0]
	}
	return Prefix(s, n-len("...")) + "..."
}

// Prefix is s cut to at most n bytes, never inside a UTF-8 sequence, unmarked.
func Prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
