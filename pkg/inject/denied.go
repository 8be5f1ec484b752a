package inject

import "strings"

// DeniedError is why a pod was denied: every problem found, each naming the
// annotation or container at fault, the bad value and what was expected.
type DeniedError struct {
	Problems []string
}

// Error is all problems in one message, joined with "; ".
func (e *DeniedError) Error() string { return strings.Join(e.Problems, "; ") }

// problem is one reason to deny a pod, with the Reason it counts under.
type problem struct {
	reason  string
	message string
}

func newDeniedError(problems []problem) *DeniedError {
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.message
	}
	return &DeniedError{Problems: msgs}
}

// deniedReason is the Reason of a denial: bad annotations first, since fixing them
// may change which containers need a command; then lookup failures; then missing
// commands.
func deniedReason(problems []problem) string {
	for _, want := range []string{ReasonInvalidAnnotation, ReasonImageLookupFailed} {
		for _, p := range problems {
			if p.reason == want {
				return want
			}
		}
	}
	return ReasonNoCommand
}
