package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/sessionstore/sessionstore/bench"
	"github.com/sessionstore/sessionstore/examples/demo/app"
	"github.com/sessionstore/sessionstore/httpsession"
)

// floorWorkload runs one of the floors the demo's workloads are judged
// against, served from one server per collection:
//
//   - floor: returning sessions' requests through bench.Floor, a bare
//     handler that reads the cookie and sets it back; the cookies are
//     signed as the demo's, for the same request size, but never
//     verified, and nothing is stored.
//   - newfloor: new sessions' requests through the demo's handler over
//     insertStore, a bare driver insert in place of the store.
func floorWorkload(ctx context.Context, c config, name string, colls []*mongo.Collection) (result, error) {
	var urls []string
	for _, coll := range colls {
		h := bench.Floor("connect.sid", app.Lifetime)
		if name == "newfloor" {
			var err error
			if h, err = app.New(insertStore[app.Record]{coll: coll}, secret, nil, nil); err != nil {
				return result{}, err
			}
		}
		url, stop, err := serve(h)
		if err != nil {
			return result{}, err
		}
		defer stop(context.WithoutCancel(ctx))
		urls = append(urls, url)
	}
	var cookies []*http.Cookie
	if name == "floor" {
		cookies = signedCookies(c.sessions)
	}
	r := load(ctx, c, urls, cookies)
	r.name = name
	return r, ctx.Err()
}

// serve serves h on a loopback port and returns its URL and a function
// that shuts the server down.
func serve(h http.Handler) (string, func(context.Context) error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	server := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go server.Serve(ln)
	return "http://" + ln.Addr().String() + "/", server.Shutdown, nil
}

// signedCookies returns n session cookies as the demo signs them, for
// random ids of express-session's length.
func signedCookies(n int) []*http.Cookie {
	cookies := make([]*http.Cookie, n)
	for i := range cookies {
		var b [24]byte
		rand.Read(b[:])
		id := base64.RawURLEncoding.EncodeToString(b[:])
		cookies[i] = &http.Cookie{Name: "connect.sid", Value: httpsession.CookieValue(id, secret)}
	}
	return cookies
}

// insertStore is the new sessions' floor: an httpsession.Store whose
// Create is a bare driver insert of the document the store would write,
// {_id, expires, session, ttl, rev}, with nothing else around it. It
// holds nothing: Get finds nothing, and the calls a new session does not
// make fail.
type insertStore[T any] struct{ coll *mongo.Collection }

// errNotFound is what insertStore.Get returns.
type errNotFound struct{}

func (errNotFound) Error() string  { return "loadtest: not found" }
func (errNotFound) NotFound() bool { return true }

var errNotFloor = errors.New("loadtest: the insert floor only creates sessions")

func (s insertStore[T]) Get(context.Context, string) (T, error) {
	var zero T
	return zero, errNotFound{}
}

func (s insertStore[T]) Create(ctx context.Context, id string, v T) error {
	_, err := s.coll.InsertOne(ctx, bson.D{
		{Key: "_id", Value: id},
		{Key: "expires", Value: time.Now().Add(app.Lifetime)},
		{Key: "session", Value: v},
		{Key: "ttl", Value: int64(0)},
		{Key: "rev", Value: int64(1)},
	})
	if err != nil {
		return fmt.Errorf("loadtest: insert: %w", err)
	}
	return nil
}

func (s insertStore[T]) Update(context.Context, string, func(*T) error) (T, error) {
	var zero T
	return zero, errNotFloor
}

func (s insertStore[T]) Touch(context.Context, string) error  { return errNotFloor }
func (s insertStore[T]) Delete(context.Context, string) error { return errNotFloor }
