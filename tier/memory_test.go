package tier_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessionstore/sessionstore/tier"
	"github.com/sessionstore/sessionstore/tier/tiertest"
)

func TestMemoryConformance(t *testing.T) {
	tiertest.Run(t, func(*testing.T) tier.Tier { return tier.NewMemory(100) })
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
	ctx := context.Background()
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
					if r, err := m.Get(ctx, id, now); err == nil && string(r.Payload) != id {
						t.Errorf("record %s holds payload %s", id, r.Payload)
					}
				case 2:
					_ = m.Touch(ctx, id, now.Add(2*time.Hour), now)
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
