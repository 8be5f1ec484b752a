package hostile

import (
	"encoding/json"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
)

// Every hostile request, through the real handler stack, gets a short answer: a
// denial that counts its problems, or a patch that keeps what the user wrote. The
// registry case runs in the benchmark only: until the registry lookup bounds what
// it reads, it costs hundreds of MiB.
func TestHostileRequests(t *testing.T) {
	wh := newWebhook("")
	for _, c := range cases() {
		if c.registry {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			body := review(t, c, "")
			resp, _ := serve(wh, body)
			if len(resp) >= maxDenialBytes {
				t.Fatalf("response of %d bytes, want under %d; it starts %.2000s", len(resp), maxDenialBytes, resp)
			}
			var ar admissionv1.AdmissionReview
			if err := json.Unmarshal(resp, &ar); err != nil || ar.Response == nil {
				t.Fatalf("response %.2000s: %v", resp, err)
			}
			msg := ""
			if ar.Response.Result != nil {
				msg = ar.Response.Result.Message
			}
			if ar.Response.Allowed != c.allowed {
				t.Fatalf("allowed %v, want %v: %.2000s", ar.Response.Allowed, c.allowed, msg)
			}
			if !strings.Contains(msg, c.denial) {
				t.Errorf("the denial does not say %q: %.2000s", c.denial, msg)
			}
			if c.problems > 0 && !strings.Contains(msg, "("+thousands(c.problems)+" in all)") {
				t.Errorf("the denial does not count its %d problems: %.2000s", c.problems, msg)
			}
			if !c.allowed {
				return
			}
			// What the user wrote, unknown fields included, is still there after the patch.
			var in admissionv1.AdmissionReview
			if err := json.Unmarshal(body, &in); err != nil {
				t.Fatal(err)
			}
			patch, err := jsonpatch.DecodePatch(ar.Response.Patch)
			if err != nil {
				t.Fatalf("patch %s: %v", ar.Response.Patch, err)
			}
			patched, err := patch.Apply(in.Request.Object.Raw)
			if err != nil {
				t.Fatalf("applying %s: %v", ar.Response.Patch, err)
			}
			if before, after := strings.Count(string(in.Request.Object.Raw), "futureField"), strings.Count(string(patched), "futureField"); after != before {
				t.Errorf("%d unknown fields after the patch, want the %d sent: %s", after, before, patched)
			}
		})
	}
}
