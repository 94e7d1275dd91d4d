package touch

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync/atomic"
	"time"
)

// Touch commands carry at most MaxIDsPerCommand ids, far below MongoDB's
// 16 MiB limit. A command that times out is sent again in halves, and
// halves the size of later ones, down to MinIDsPerCommand: servers that
// update document by document (FerretDB v1 takes milliseconds for each)
// then still get touches written within the timeout of a command.
const (
	MaxIDsPerCommand = 1_000
	MinIDsPerCommand = 50
)

// Server is what a Writer writes to.
type Server interface {
	// TouchMany moves the expiry of every id live at now to expires,
	// never shortening one, and reports how many it changed.
	TouchMany(ctx context.Context, ids []string, expires, now time.Time) (int64, error)
	// TTLs returns the stored lifetime of each id live at now, zero for
	// the default one; ids missing from the result are gone.
	TTLs(ctx context.Context, ids []string, now time.Time) (map[string]time.Duration, error)
}

// WriterOptions configures a Writer.
type WriterOptions struct {
	Timeout     time.Duration // bounds each command
	Granularity time.Duration // expiries are rounded up to a multiple of it
	DefaultTTL  time.Duration // the lifetime of sessions that store none
	// OnShrink, if set, is called when a timeout makes later commands
	// carry fewer ids: n timed out, next is the new size.
	OnShrink func(n, next int)
}

// Writer writes batches of touches, one command per group of ids that
// share a rounded expiry. It is safe for concurrent use.
type Writer struct {
	srv   Server
	opts  WriterOptions
	chunk atomic.Int64 // ids per command; shrinks on timeouts
}

// NewWriter returns a writer to srv.
func NewWriter(srv Server, opts WriterOptions) *Writer {
	w := &Writer{srv: srv, opts: opts}
	w.chunk.Store(MaxIDsPerCommand)
	return w
}

// Chunk returns how many ids a command carries at most now.
func (w *Writer) Chunk() int { return int(w.chunk.Load()) }

// Result says what a Write did.
type Result struct {
	Sessions int // touches written or found to have nothing to extend
	Groups   int // distinct expiries
}

// Write writes batch at now and returns the touches it could not write.
// It reads the lifetimes that batch lacks first; a session found gone
// then is dropped from the batch.
func (w *Writer) Write(ctx context.Context, batch map[string]Pending, now time.Time) (map[string]Pending, Result, error) {
	if err := w.resolve(ctx, batch, now); err != nil {
		return batch, Result{}, err
	}
	groups := make(map[time.Time][]string)
	for key, p := range batch {
		target, _ := p.Target()
		exp := Round(target, w.opts.Granularity)
		groups[exp] = append(groups[exp], key)
	}
	var (
		failed map[string]Pending
		errs   []error
	)
	for _, exp := range slices.SortedFunc(maps.Keys(groups), time.Time.Compare) {
		for _, ids := range w.writeGroup(ctx, groups[exp], exp, now, &errs) {
			if failed == nil {
				failed = make(map[string]Pending)
			}
			for _, key := range ids {
				failed[key] = batch[key]
			}
		}
	}
	return failed, Result{Sessions: len(batch) - len(failed), Groups: len(groups)}, errors.Join(errs...)
}

// writeGroup writes ids with the expiry exp and returns the commands
// that failed. A command that times out is sent again once, split in
// smaller ones, so that a slow server still gets it in this write; a
// server that does not answer costs at most three timeouts a command.
func (w *Writer) writeGroup(ctx context.Context, ids []string, exp, now time.Time, errs *[]error) (failed [][]string) {
	type command struct {
		ids   []string
		retry bool
	}
	var queue []command
	for chunk := range slices.Chunk(ids, w.Chunk()) {
		queue = append(queue, command{ids: chunk})
	}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		cctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
		_, err := w.srv.TouchMany(cctx, c.ids, exp, now)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			size := w.shrink(len(c.ids))
			if !c.retry && size < len(c.ids) {
				var again []command
				for chunk := range slices.Chunk(c.ids, size) {
					again = append(again, command{ids: chunk, retry: true})
				}
				queue = append(again, queue...)
				continue
			}
		}
		if err != nil {
			*errs = append(*errs, err)
			failed = append(failed, c.ids)
		}
	}
	return failed
}

// shrink halves the ids of later commands after one of n ids timed out,
// and returns the new size.
func (w *Writer) shrink(n int) int {
	size := int64(max(n/2, MinIDsPerCommand))
	if old := w.chunk.Load(); size < old && w.chunk.CompareAndSwap(old, size) && w.opts.OnShrink != nil {
		w.opts.OnShrink(n, int(size))
	}
	return w.Chunk()
}

// resolve sets the lifetime of every touch of batch that lacks one, from
// the server, and drops those whose session is gone.
func (w *Writer) resolve(ctx context.Context, batch map[string]Pending, now time.Time) error {
	var unknown []string
	for key, p := range batch {
		if _, ok := p.Target(); !ok {
			unknown = append(unknown, key)
		}
	}
	for chunk := range slices.Chunk(unknown, MaxIDsPerCommand) {
		cctx, cancel := context.WithTimeout(ctx, w.opts.Timeout)
		lives, err := w.srv.TTLs(cctx, chunk, now)
		cancel()
		if err != nil {
			return err
		}
		for _, key := range chunk {
			life, ok := lives[key]
			if !ok {
				delete(batch, key) // gone or expired: nothing to extend
				continue
			}
			p := batch[key]
			p.Life = Lifetime(life, w.opts.DefaultTTL)
			batch[key] = p
		}
	}
	return nil
}
