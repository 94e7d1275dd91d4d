// Package httpsession is net/http session middleware with the semantics of
// Express's express-session, so that a Go service and an Express app can
// share sessions: the same cookie and the same store collection.
//
// A [Manager] wraps a handler with [Manager.Handler]. The middleware reads
// the session cookie, loads the session from a [Store] and puts it in the
// request context, where handlers find it with [FromContext]. It saves the
// session once, just before the response headers are written.
//
// # Cookie
//
// The cookie value is the one express-session writes: "s:" + id + "." +
// the unpadded standard base64 of HMAC-SHA256(secret, id), URL-encoded the
// way JavaScript's encodeURIComponent does it. [Sign], [Unsign],
// [CookieValue] and [ParseCookieValue] expose the format. The first secret
// signs; every secret verifies, so secrets can be rotated. When the
// response sends back the cookie the request brought, it sends the value
// already verified, signing it anew only if an older secret signed it. A
// cookie that is malformed, badly signed or names a missing session gives
// the request a fresh session; it is never an error.
//
// # Saving
//
// As in express-session, with the same option names:
//   - a changed session is stored (Set), and so is every session when
//     Options.Resave is on;
//   - an unchanged session loaded from the store is touched (Touch), which
//     extends its expiry without rewriting it;
//   - a fresh, unchanged session is stored only when
//     Options.SaveUninitialized is on; otherwise the response gets no cookie;
//   - a destroyed session is deleted and its cookie expired.
//
// The cookie is sent when the client does not have the session's id yet,
// when the session is destroyed, on every response with a stored session
// when Options.Rolling is on, and when a changed session has a persistent cookie (Options.MaxAge),
// so that its expiry moves forward.
//
// # Sharing sessions with Express
//
// The Store decides how values are encoded. For Express to read a session
// written here, T must encode to the document express-session expects,
// including its "cookie" object: express-session reads cookie.expires and
// cookie.originalMaxAge from every session it loads.
package httpsession
