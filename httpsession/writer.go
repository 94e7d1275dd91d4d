package httpsession

import (
	"io"
	"net/http"
)

// responseWriter saves the session before the first write reaches the
// underlying ResponseWriter. Other capabilities, such as Hijack, are
// reached through Unwrap by http.ResponseController; a hijacked response
// has its session saved when the handler returns.
type responseWriter[T any] struct {
	http.ResponseWriter
	r *http.Request // the request the session belongs to
	s *Session[T]
}

// WriteHeader saves the session, unless code is informational, and writes
// the header.
func (w *responseWriter[T]) WriteHeader(code int) {
	if code < 100 || code >= 200 || code == http.StatusSwitchingProtocols {
		w.commit()
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write saves the session and writes p.
func (w *responseWriter[T]) Write(p []byte) (int, error) {
	w.commit()
	return w.ResponseWriter.Write(p)
}

// ReadFrom saves the session and copies src, keeping the underlying
// writer's own ReadFrom (sendfile) in play.
func (w *responseWriter[T]) ReadFrom(src io.Reader) (int64, error) {
	w.commit()
	return io.Copy(w.ResponseWriter, src)
}

// Flush saves the session and flushes, if the underlying writer can.
func (w *responseWriter[T]) Flush() { _ = w.FlushError() }

// FlushError saves the session and flushes. It returns
// http.ErrNotSupported if the underlying writer cannot flush.
func (w *responseWriter[T]) FlushError() error {
	w.commit()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the underlying ResponseWriter, for
// http.ResponseController.
func (w *responseWriter[T]) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// commit saves the session if it has not been saved. The status is already
// chosen, so a failure can only be logged.
func (w *responseWriter[T]) commit() {
	if w.s.committed {
		return
	}
	ctx, cancel := saveContext(w.r.Context())
	defer cancel()
	if err := w.s.commit(ctx, w.Header()); err != nil {
		w.s.m.logger.ErrorContext(ctx, "httpsession: session not saved; response already started", "err", err)
	}
}
