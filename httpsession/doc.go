// Package httpsession is net/http session middleware with the semantics of
// Express's express-session, so that a Go service and an Express app can
// share sessions: the same cookie and the same store collection.
//
// A [Manager] wraps a handler with [Manager.Handler]. The middleware reads
// the session cookie, loads the session from a [Store] and puts it in the
// request context, where handlers find it with [FromContext]. It saves the
// session once, just before the response header is written, so that a
// failed save reaches Options.ErrorHandler instead of being lost behind a
// 200.
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
//   - a changed session is stored (Create for a new one, Update for a
//     loaded one, replaying the handler's changes on the stored value
//     after a conflict), and so is every session when Options.Resave is
//     on;
//   - an unchanged session loaded from the store is touched (Touch), which
//     extends its expiry without rewriting it;
//   - a fresh, unchanged session is stored only when
//     Options.SaveUninitialized is on; otherwise the response gets no cookie;
//   - a destroyed session is deleted and its cookie expired.
//
// The cookie is sent when the client does not have the session's id yet,
// when the session is destroyed, on every response with a stored session
// when Options.Rolling is on, and when a changed session has a persistent
// cookie, so that its expiry moves forward.
//
// # Sharing sessions with Express
//
// The store holds a [Record] for each session: T's fields and, beside
// them, express-session's cookie object, which the middleware owns, as
// express-session does. With codec.BSON the documents are those of
// @iwsio/mongodb-express-session and connect-mongo (stringify: false):
// an Express app with the same secret, cookie name and collection reads
// the sessions written here, and the reverse. Fields that T does not
// declare are kept as they were stored. A loaded session's cookie
// attributes and lifetime come from its stored cookie object, whoever
// wrote it; with an [ExpiryStore] the session expires in the store when
// its cookie does, as the Node stores compute it. A stored session that T
// cannot decode is logged once and served as a fresh session; the
// document is left for the app that can read it.
package httpsession
