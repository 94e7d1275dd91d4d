package httpsession

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// responseWriter saves the session before the response header reaches the
// underlying ResponseWriter. When the save fails, ErrorHandler answers on
// the underlying writer instead, and the handler's later writes fail with
// ErrNotSaved. Other capabilities are reached through Unwrap by
// http.ResponseController.
type responseWriter[T any] struct {
	http.ResponseWriter
	r      *http.Request // the request the session belongs to
	s      *Session[T]
	failed bool // the save failed and ErrorHandler answered
}

// WriteHeader saves the session, unless code is informational, and writes
// the header.
func (w *responseWriter[T]) WriteHeader(code int) {
	if code < 100 || code >= 200 || code == http.StatusSwitchingProtocols {
		if !w.commit() {
			return
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write saves the session and writes p.
func (w *responseWriter[T]) Write(p []byte) (int, error) {
	if !w.commit() {
		return 0, ErrNotSaved
	}
	return w.ResponseWriter.Write(p)
}

// ReadFrom saves the session and copies src, keeping the underlying
// writer's own ReadFrom (sendfile) in play.
func (w *responseWriter[T]) ReadFrom(src io.Reader) (int64, error) {
	if !w.commit() {
		return 0, ErrNotSaved
	}
	return io.Copy(w.ResponseWriter, src)
}

// Flush saves the session and flushes, if the underlying writer can.
func (w *responseWriter[T]) Flush() { _ = w.FlushError() }

// FlushError saves the session and flushes. It returns
// http.ErrNotSupported if the underlying writer cannot flush.
func (w *responseWriter[T]) FlushError() error {
	if !w.commit() {
		return ErrNotSaved
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack saves the session and hijacks the connection. It returns
// http.ErrNotSupported if the underlying writer cannot hijack.
func (w *responseWriter[T]) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if !w.commit() {
		return nil, nil, ErrNotSaved
	}
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap returns the underlying ResponseWriter, for
// http.ResponseController.
func (w *responseWriter[T]) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// commit saves the session if it has not been saved, and reports whether
// the handler may go on writing. A failure goes to ErrorHandler, which
// answers on the underlying writer: the header is not written yet.
func (w *responseWriter[T]) commit() bool {
	if w.s.committed {
		return !w.failed
	}
	ctx, cancel := saveContext(w.r.Context())
	defer cancel()
	if err := w.s.commit(ctx, w.Header()); err != nil {
		w.failed = true
		w.s.m.onError(w.ResponseWriter, w.r, err)
		return false
	}
	return true
}
