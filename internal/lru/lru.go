// Package lru is a small least-recently-used cache of a fixed number of
// entries, typed by key and value. It is not safe for concurrent use: its
// users hold their own lock around it.
package lru

import "container/list"

// Cache keeps at most its size's entries, forgetting the least recently used
// one to make room.
type Cache[K comparable, V any] struct {
	size  int
	order *list.List // of *entry[K, V], the most recently used first
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key   K
	value V
}

// New returns an empty cache of at most size entries (at least one).
func New[K comparable, V any](size int) *Cache[K, V] {
	return &Cache[K, V]{size: max(size, 1), order: list.New(), items: make(map[K]*list.Element)}
}

// Get returns the value of key and marks it used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	if el, ok := c.items[key]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*entry[K, V]).value, true
	}
	var zero V
	return zero, false
}

// Add sets the value of key, marks it used and, when the cache was full,
// forgets the least recently used entry.
func (c *Cache[K, V]) Add(key K, value V) {
	if el, ok := c.items[key]; ok {
		el.Value.(*entry[K, V]).value = value
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&entry[K, V]{key: key, value: value})
	if c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*entry[K, V]).key)
	}
}

// Len is how many entries the cache holds.
func (c *Cache[K, V]) Len() int { return c.order.Len() }
