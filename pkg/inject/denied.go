package inject

import (
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubernetes-entrypoint/kubernetes-entrypoint/internal/safetext"
)

// MaxShownProblems is how many problems a denial shows in full; the others are
// counted. A pod with 100,000 bad items in one annotation gets a denial of a few
// KiB that still says how many problems there are.
const MaxShownProblems = 10

// maxProblemBytes bounds one shown problem. Quoted values are already cut (see
// quoted and spec.ValueError); this is the backstop that keeps a denial well under
// 16 KiB whatever the pod holds: MaxShownProblems of these and a summary line.
const maxProblemBytes = 1024

// DeniedError is why a pod was denied: every problem found is counted in Total, and
// the first MaxShownProblems are in Problems, each with the path of the annotation
// or container at fault and, in Detail, a message naming it, the bad value and what
// was expected.
type DeniedError struct {
	Problems field.ErrorList
	Total    int
}

// Error is the problems shown, joined with "; ", then how many more there are.
func (e *DeniedError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Detail)
	}
	if more := e.Total - len(e.Problems); more > 0 {
		b.WriteString("; ... and ")
		b.WriteString(thousands(more))
		b.WriteString(" more problem")
		if more > 1 {
			b.WriteString("s")
		}
		b.WriteString(" (")
		b.WriteString(thousands(e.Total))
		b.WriteString(" in all)")
	}
	return b.String()
}

// StatusDetails is the denial as the details of an API status, as an API server
// reports an invalid object: pod name (cut: the webhook sees it unvalidated) and
// one cause per shown problem, at its field path, with its bounded message.
func (e *DeniedError) StatusDetails(name string) *metav1.StatusDetails {
	causes := make([]metav1.StatusCause, len(e.Problems))
	for i, p := range e.Problems {
		causes[i] = metav1.StatusCause{Type: metav1.CauseType(p.Type), Message: p.Detail, Field: p.Field}
	}
	return &metav1.StatusDetails{Kind: "Pod", Name: truncate(name, maxQuotedBytes), Causes: causes}
}

// problems collects the reasons to deny a pod. Every problem is counted, but only
// the first MaxShownProblems are rendered and kept: the others cost a counter, so
// that collecting them is linear in the input and allocates nothing per problem.
type problems struct {
	shown field.ErrorList
	total int
	// byReason counts problems by the Reason they fall under.
	byReason map[string]int
}

// full tells whether another problem would only be counted. Callers with an
// expensive message check it first and call count instead of add.
func (ps *problems) full() bool { return len(ps.shown) >= MaxShownProblems }

// add records a problem at path, with its message.
func (ps *problems) add(reason string, path *field.Path, message string) {
	if !ps.full() {
		ps.shown = append(ps.shown, &field.Error{
			Type:     field.ErrorTypeInvalid,
			Field:    path.String(),
			BadValue: field.OmitValueType{},
			Detail:   truncate(message, maxProblemBytes),
		})
	}
	ps.count(reason)
}

// count records a problem that will not be shown.
func (ps *problems) count(reason string) {
	ps.total++
	if ps.byReason == nil {
		ps.byReason = make(map[string]int, 2)
	}
	ps.byReason[reason]++
}

func (ps *problems) any() bool { return ps.total > 0 }

func (ps *problems) deniedError() *DeniedError {
	return &DeniedError{Problems: ps.shown, Total: ps.total}
}

// reason is the Reason of a denial: bad annotations first, since fixing them may
// change which containers need a command; then lookup failures; then missing
// commands.
func (ps *problems) reason() string {
	for _, want := range []string{ReasonInvalidAnnotation, ReasonImageLookupFailed} {
		if ps.byReason[want] > 0 {
			return want
		}
	}
	return ReasonNoCommand
}

// truncate cuts s to at most limit bytes on a character boundary, saying how long
// it was: "prefix... (N bytes in all)", as the spec parsers cut values.
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return safetext.Prefix(s, limit) + "... (" + strconv.Itoa(len(s)) + " bytes in all)"
}

// thousands writes n, not negative, with commas between groups of three digits: 99,990.
func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// maxQuotedBytes bounds a name or image that a message repeats from the pod: the
// webhook sees the pod before the API server validates it, so a container name may
// be 100 kB long.
const maxQuotedBytes = 100

// quoted is s in double quotes, for messages; a long s is cut and says how long it was.
func quoted(s string) string {
	if len(s) > maxQuotedBytes {
		return strconv.Quote(safetext.Prefix(s, maxQuotedBytes)) + "... (" + strconv.Itoa(len(s)) + " bytes in all)"
	}
	return strconv.Quote(s)
}
