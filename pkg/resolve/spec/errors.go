package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
)

// ValueError is one problem with one value of the contract. Its message reads
//
//	[Name: ]item N ["item" ]of "value" problem; expected form
//	[Name: ]"value" problem; expected form
//
// The Parse* functions leave Name empty, because the same value may come from an
// environment variable or from an annotation; WithName fills it in.
type ValueError struct {
	// Name is where the value came from: "DEPENDENCY_SERVICE", or an annotation.
	Name string
	// Value is the whole value as given, blanks around it trimmed.
	Value string
	// Item is the 1-based position of the bad item in a list or JSON array, 0 when
	// the problem is with the value as a whole.
	Item int
	// ItemText is the bad item as written, when showing it helps to find it in Value.
	ItemText string
	// Problem says what is wrong, as a predicate of the value or item: "is empty".
	Problem string
	// Expected is the accepted form: "[namespace:]name,...".
	Expected string
}

func (e *ValueError) Error() string {
	var b strings.Builder
	if e.Name != "" {
		b.WriteString(e.Name)
		b.WriteString(": ")
	}
	if e.Item > 0 {
		fmt.Fprintf(&b, "item %d ", e.Item)
		if e.ItemText != "" {
			b.WriteString(quote(e.ItemText, maxQuotedItem))
			b.WriteString(" ")
		}
		b.WriteString("of ")
	}
	b.WriteString(quote(e.Value, maxQuotedValue))
	b.WriteString(" ")
	b.WriteString(e.Problem)
	if e.Expected != "" {
		b.WriteString("; expected ")
		b.WriteString(e.Expected)
	}
	return b.String()
}

// WithName returns err with name set on every ValueError in it (joined errors
// included), so that FromEnv can say "DEPENDENCY_SERVICE" and the webhook can say
// which annotation. The ValueErrors in err are copied, not changed. Other errors are
// prefixed with "name: ".
func WithName(name string, err error) error {
	if err == nil {
		return nil
	}
	var named []error
	for _, e := range leaves(err) {
		var ve *ValueError
		if errors.As(e, &ve) {
			c := *ve
			c.Name = name
			named = append(named, &c)
			continue
		}
		named = append(named, fmt.Errorf("%s: %w", name, e))
	}
	if len(named) == 1 {
		return named[0]
	}
	return errors.Join(named...)
}

// ValueErrors lists every ValueError in err, joined errors included, in order.
func ValueErrors(err error) []*ValueError {
	var out []*ValueError
	for _, e := range leaves(err) {
		var ve *ValueError
		if errors.As(e, &ve) {
			out = append(out, ve)
		}
	}
	return out
}

// leaves flattens errors.Join trees; an error that wraps a single error is a leaf.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// Values longer than these are cut in messages: a denied annotation or a crash-looping
// init container should say what is wrong, not echo kilobytes of JSON.
const (
	maxQuotedValue = 200
	maxQuotedItem  = 80
)

// quote quotes s for a message: in double quotes, or in backquotes when s holds
// double quotes (JSON reads badly with every quote escaped). A cut value says so
// after the closing quote.
func quote(s string, limit int) string {
	cut := ""
	if len(s) > limit {
		cut = fmt.Sprintf("... (%d bytes in all)", len(s))
		s = safetext.Prefix(s, limit)
	}
	if strings.Contains(s, `"`) && strconv.CanBackquote(s) {
		return "`" + s + "`" + cut
	}
	return strconv.Quote(s) + cut
}

// joinErrors is errors.Join, except that a single error is returned as itself.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
