package lru

import "testing"

func TestCache(t *testing.T) {
	type step struct {
		op         string // "add" or "get"
		key, value int
		wantOK     bool // for get
	}
	tests := []struct {
		name    string
		size    int
		steps   []step
		wantLen int
	}{
		{"keeps up to its size", 2, []step{{"add", 1, 10, false}, {"add", 2, 20, false}, {"get", 1, 10, true}, {"get", 2, 20, true}}, 2},
		{"forgets the oldest", 2, []step{{"add", 1, 10, false}, {"add", 2, 20, false}, {"add", 3, 30, false}, {"get", 1, 0, false}, {"get", 3, 30, true}}, 2},
		{"a get keeps an entry", 2, []step{{"add", 1, 10, false}, {"add", 2, 20, false}, {"get", 1, 10, true}, {"add", 3, 30, false}, {"get", 2, 0, false}, {"get", 1, 10, true}}, 2},
		{"add replaces", 2, []step{{"add", 1, 10, false}, {"add", 1, 11, false}, {"get", 1, 11, true}}, 1},
		{"size under one is one", 0, []step{{"add", 1, 10, false}, {"add", 2, 20, false}, {"get", 1, 0, false}, {"get", 2, 20, true}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New[int, int](tt.size)
			for i, s := range tt.steps {
				if s.op == "add" {
					c.Add(s.key, s.value)
					continue
				}
				if v, ok := c.Get(s.key); ok != s.wantOK || v != s.value {
					t.Fatalf("step %d: Get(%d) = %d, %v; want %d, %v", i, s.key, v, ok, s.value, s.wantOK)
				}
			}
			if c.Len() != tt.wantLen {
				t.Fatalf("Len() = %d, want %d", c.Len(), tt.wantLen)
			}
		})
	}
}
