package tier_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/internal/tier"
)

func TestMemory(t *testing.T) {
	m := tier.NewMemory(100)
	now := time.Now().Truncate(time.Millisecond)
	if _, ok := m.Get("a"); ok {
		t.Fatal("Get of a missing id found a record")
	}
	m.Put(tier.Record{ID: "a", Payload: []byte("1"), Expires: now.Add(time.Hour), TTL: time.Minute})
	m.Put(tier.Record{ID: "dead", Payload: []byte("2"), Expires: now.Add(-time.Second)})
	if got, ok := m.Get("a"); !ok || string(got.Payload) != "1" || got.TTL != time.Minute {
		t.Fatalf("Get(a) = %+v, %t", got, ok)
	}
	if got, ok := m.Get("dead"); !ok || got.Live(now) {
		t.Fatalf("Get(dead) = %+v, %t; want the expired record", got, ok)
	}
	for _, c := range []struct {
		id      string
		expires time.Time
		want    bool
	}{
		{"a", now.Add(2 * time.Hour), true},
		{"a", now.Add(time.Minute), false},   // never shortens
		{"dead", now.Add(time.Hour), false},  // never revives
		{"ghost", now.Add(time.Hour), false}, // never creates
	} {
		if got := m.Extend(c.id, c.expires, now); got != c.want {
			t.Errorf("Extend(%s, %v) = %t, want %t", c.id, c.expires.Sub(now), got, c.want)
		}
	}
	if got, _ := m.Get("a"); !got.Expires.Equal(now.Add(2 * time.Hour)) {
		t.Errorf("a expires in %v, want 2h", got.Expires.Sub(now))
	}
	if _, ok := m.Get("ghost"); ok {
		t.Error("Extend created a record")
	}
	m.Remove("a")
	if _, ok := m.Get("a"); ok {
		t.Error("Get after Remove found the record")
	}
	m.Clear()
	if n := m.Entries(); n != 0 {
		t.Errorf("%d entries after Clear", n)
	}
}

// TestMemoryKeep checks that a decoded value is kept only beside the
// payload it was decoded from, and that extending the record keeps it.
func TestMemoryKeep(t *testing.T) {
	m := tier.NewMemory(100)
	now := time.Now().Truncate(time.Millisecond)
	payload := []byte("v1")
	m.Put(tier.Record{ID: "a", Payload: payload, Expires: now.Add(time.Hour)})
	if m.Keep("a", []byte("v1"), "equal bytes, another slice") {
		t.Error("Keep matched an equal payload that is not the record's")
	}
	if m.Keep("ghost", payload, "x") {
		t.Error("Keep created a record")
	}
	if !m.Keep("a", payload, "decoded") {
		t.Fatal("Keep did not match the record's own payload")
	}
	if got, _ := m.Get("a"); got.Value != "decoded" {
		t.Fatalf("Get(a).Value = %v, want the kept value", got.Value)
	}
	if !m.Extend("a", now.Add(2*time.Hour), now) {
		t.Fatal("Extend failed")
	}
	if got, _ := m.Get("a"); got.Value != "decoded" {
		t.Errorf("Extend dropped the kept value: %v", got.Value)
	}
	m.Put(tier.Record{ID: "a", Payload: []byte("v2"), Expires: now.Add(time.Hour)})
	if got, _ := m.Get("a"); got.Value != nil {
		t.Errorf("a new record carries the old value %v", got.Value)
	}
	if m.Keep("a", payload, "stale") {
		t.Error("Keep matched the payload of a record replaced since")
	}
	m.Put(tier.Record{ID: "empty", Expires: now.Add(time.Hour)})
	if m.Keep("empty", nil, "x") {
		t.Error("Keep matched an empty payload")
	}
}

// TestMemoryNeverChangesARecordHandedOut checks that Extend and Keep
// store changed copies: a record Get returned stays as it was.
func TestMemoryNeverChangesARecordHandedOut(t *testing.T) {
	m := tier.NewMemory(10)
	now := time.Now().Truncate(time.Millisecond)
	payload := []byte("v")
	m.Put(tier.Record{ID: "a", Payload: payload, Expires: now.Add(time.Hour)})
	before, _ := m.Get("a")
	if !m.Extend("a", now.Add(2*time.Hour), now) || !m.Keep("a", payload, "decoded") {
		t.Fatal("Extend or Keep failed")
	}
	if !before.Expires.Equal(now.Add(time.Hour)) || before.Value != nil {
		t.Errorf("a record handed out changed: expires in %v, value %v", before.Expires.Sub(now), before.Value)
	}
	if after, _ := m.Get("a"); !after.Expires.Equal(now.Add(2*time.Hour)) || after.Value != "decoded" {
		t.Errorf("the stored record: expires in %v, value %v", after.Expires.Sub(now), after.Value)
	}
}

func TestMemoryBound(t *testing.T) {
	for _, size := range []int{1, 7, 64, 1000, 10_000} {
		m := tier.NewMemory(size)
		now := time.Now()
		for i := range 3 * size {
			m.Put(tier.Record{ID: fmt.Sprint(i), Expires: now.Add(time.Hour)})
			if n := m.Entries(); n > size {
				t.Fatalf("size %d: %d entries after %d puts", size, n, i+1)
			}
		}
		if n := m.Entries(); n < size*9/10 {
			t.Errorf("size %d: only %d entries held after filling", size, n)
		}
		if ev := m.Evictions(); ev != uint64(3*size-m.Entries()) {
			t.Errorf("size %d: %d evictions, want %d", size, ev, 3*size-m.Entries())
		}
	}
}

func TestMemoryConcurrent(t *testing.T) {
	m := tier.NewMemory(1000)
	now := time.Now()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				id := fmt.Sprint((g * i) % 1500)
				switch i % 4 {
				case 0:
					m.Put(tier.Record{ID: id, Payload: []byte(id), Expires: now.Add(time.Hour)})
				case 1:
					if r, ok := m.Get(id); ok && string(r.Payload) != id {
						t.Errorf("record %s holds payload %s", id, r.Payload)
					}
				case 2:
					m.Extend(id, now.Add(2*time.Hour), now)
				case 3:
					m.Remove(id)
				}
			}
		})
	}
	wg.Wait()
	if m.Entries() > 1000 {
		t.Fatalf("%d entries, bound is 1000", m.Entries())
	}
}

func TestNewMemoryPanicsOnZero(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewMemory(0) did not panic")
		}
	}()
	tier.NewMemory(0)
}
