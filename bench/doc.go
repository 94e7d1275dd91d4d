// Package bench measures the session store against a real server: the
// in-memory hit path against its floor (a bare LRU plus the codec), the
// database paths against what the driver alone pays, the batching of
// touches, the codecs, tracing overhead and the memory bound.
//
// The benchmarks live in the package's tests. Run them from this directory
// with
//
//	go test -run='^$' -bench=. ./...
//
// They use the server named by MONGODB_URI or else start an embedded
// FerretDB (see package mongotest). scripts/bench.sh at the repository
// root runs them several times, summarises the runs with benchstat, and
// checks the targets with cmd/targets. cmd/loadtest drives an HTTP handler
// built on package httpsession under a bounded load.
//
// Sessions are of type [Session], a representative ten-field value; [ID]
// makes ids shaped like express-session's.
package bench
