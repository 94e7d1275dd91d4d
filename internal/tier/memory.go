package tier

import (
	"hash/maphash"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// minShardSize keeps shards large enough that sharding does not make the
// least recently used order much coarser.
const minShardSize = 64

// Memory is a bounded in-process tier: a least-recently-used cache split
// into shards, each behind its own mutex, so that parallel lookups of
// different sessions rarely contend. It never holds more than its size in
// records. Memory is safe for concurrent use; its methods do no I/O.
//
// Records are held by pointer and never modified once stored: a change
// stores a changed copy. So Get hands out the record itself, without
// copying it.
type Memory struct {
	seed   maphash.Seed
	mask   uint64
	shards []memoryShard

	evictions atomic.Uint64
}

type memoryShard struct {
	mu  sync.Mutex // protects lru
	lru *simplelru.LRU[string, *Record]
	_   [40]byte // keeps neighbouring shards off one cache line
}

// NewMemory returns a Memory tier that holds at most size records. It
// panics if size is less than one.
func NewMemory(size int) *Memory {
	if size < 1 {
		panic("sessionstore: tier.NewMemory: size must be at least 1")
	}
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) && n < 256 && size/(n*2) >= minShardSize {
		n *= 2
	}
	m := &Memory{seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]memoryShard, n)}
	for i := range m.shards {
		capacity := size / n
		if i < size%n {
			capacity++
		}
		lru, err := simplelru.NewLRU[string, *Record](capacity, nil)
		if err != nil {
			panic(err) // unreachable: capacity >= 1
		}
		m.shards[i].lru = lru
	}
	return m
}

func (m *Memory) shard(id string) *memoryShard {
	return &m.shards[maphash.String(m.seed, id)&m.mask]
}

// Get returns the record for id, expired or not, and marks it recently
// used. The record is shared: the caller must not modify it. Get does not
// allocate.
func (m *Memory) Get(id string) (*Record, bool) {
	sh := m.shard(id)
	sh.mu.Lock()
	rec, ok := sh.lru.Get(id)
	sh.mu.Unlock()
	return rec, ok
}

// Put stores rec, evicting the least recently used record of its shard
// when the shard is full. Memory keeps rec.Payload: the caller must not
// modify it afterwards.
func (m *Memory) Put(rec Record) {
	sh := m.shard(rec.ID)
	sh.mu.Lock()
	evicted := sh.lru.Add(rec.ID, &rec)
	sh.mu.Unlock()
	if evicted {
		m.evictions.Add(1)
	}
}

// Extend moves id's expiry to expires if the record is live at now and
// expires is later, and reports whether it did.
func (m *Memory) Extend(id string, expires, now time.Time) bool {
	sh := m.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rec, ok := sh.lru.Peek(id)
	if !ok || !rec.Live(now) || !rec.Expires.Before(expires) {
		return false
	}
	changed := *rec
	changed.Expires = expires
	sh.lru.Add(id, &changed)
	return true
}

// Keep sets value as the decoded payload of id's record, if the record
// still holds payload: the same slice, not only the same bytes, so that
// a record written since, even with an equal payload, is left alone. It
// reports whether it did. An empty payload is never matched.
func (m *Memory) Keep(id string, payload []byte, value any) bool {
	if len(payload) == 0 {
		return false
	}
	sh := m.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	rec, ok := sh.lru.Peek(id)
	if !ok || len(rec.Payload) != len(payload) || &rec.Payload[0] != &payload[0] {
		return false
	}
	changed := *rec
	changed.Value = value
	sh.lru.Add(id, &changed)
	return true
}

// Remove removes id.
func (m *Memory) Remove(id string) {
	sh := m.shard(id)
	sh.mu.Lock()
	sh.lru.Remove(id)
	sh.mu.Unlock()
}

// Entries returns how many records the tier holds, expired ones included.
func (m *Memory) Entries() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.lru.Len()
		sh.mu.Unlock()
	}
	return n
}

// Evictions returns how many records have been evicted to make room.
func (m *Memory) Evictions() uint64 { return m.evictions.Load() }

// Clear removes every record.
func (m *Memory) Clear() {
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		sh.lru.Purge()
		sh.mu.Unlock()
	}
}
