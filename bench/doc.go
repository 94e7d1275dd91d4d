// Package bench measures the session store against a real server: the
// in-memory hit path against its floors (a bare LRU plus the codec; a
// sharded map of decoded sessions plus the same clone, for Options.Clone),
// the database paths against what the driver alone pays, the batching and
// skipping of touches, the codecs, tracing overhead, the memory bound,
// and the demo's request against a bare handler ([Floor]).
//
// The benchmarks live in the package's tests. Run them from this directory
// with
//
//	go test -run='^$' -bench=. ./...
//
// They use the server named by MONGODB_URI or else start an embedded
// FerretDB (see package mongotest). scripts/bench.sh at the repository
// root runs them several times, summarises the runs with benchstat, and
// checks the targets with cmd/targets. cmd/loadtest drives the demo's HTTP
// handler and its floors under a bounded load.
//
// Sessions are of type [Session], a representative ten-field value with
// its deep copy [Session.Clone]; [ID] makes ids shaped like
// express-session's.
package bench
