package spec

import (
	"reflect"
	"strings"
	"testing"
)

// TestCountCoversEverySlice fills every list of a Spec with one item each and
// expects Count to see them all: a new kind that Kinds counts wrongly fails here.
func TestCountCoversEverySlice(t *testing.T) {
	s := &Spec{}
	v := reflect.ValueOf(s).Elem()
	lists := 0
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.Slice || v.Type().Field(i).Name == "Command" {
			continue
		}
		f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		lists++
	}
	s.Jobs[0].Name = "by-name"
	if got := Count(s); got.Items != lists || got.Selectors != 1 {
		t.Fatalf("Count = %+v, want %d items (one per list) and 1 selector (the pod)", got, lists)
	}
	// The table counts the same: each kind its own items, a superseding kind
	// those of the kind it supersedes.
	fromTable := 0
	for _, k := range Kinds() {
		if k.Supersedes == "" {
			fromTable += k.Count(s)
		}
	}
	if fromTable != lists {
		t.Fatalf("the kinds table counts %d items, Count %d", fromTable, lists)
	}
}

func TestCheckLimits(t *testing.T) {
	tests := []struct {
		name    string
		spec    *Spec
		wantErr string
	}{
		{"none", &Spec{}, ""},
		{"at the item cap", &Spec{Services: make([]ObjectRef, MaxItems)}, ""},
		{"past the item cap", &Spec{Services: make([]ObjectRef, MaxItems), TCP: []string{"x:1"}}, "101 dependency items, more than 100"},
		{"at the selector cap", &Spec{Pods: make([]PodRef, MaxSelectorItems)}, ""},
		{"past the selector cap, jobs by labels count", &Spec{Pods: make([]PodRef, MaxSelectorItems), Jobs: []JobRef{{Labels: map[string]string{"a": "b"}}}},
			"21 dependency items select by labels, more than 20"},
		{"jobs by name are no selectors", &Spec{Pods: make([]PodRef, MaxSelectorItems), Jobs: []JobRef{{Name: "j"}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckLimits(tt.spec)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("CheckLimits = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("CheckLimits = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
