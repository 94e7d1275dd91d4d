package gorillastore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
	"github.com/labstack/echo-contrib/session"
	"github.com/labstack/echo/v4"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/gorillastore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// An echo server with echo-contrib sessions kept in MongoDB, run here
// against the test server: the gorillastore.Store is the echo-contrib
// store as it is.
func Example_echo() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(mongotest.URI()))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)
	coll := client.Database(mongotest.Database).Collection("gorillastore_example_echo")
	defer coll.Drop(ctx)

	sessionsStore, err := gorillastore.NewSessionStore(coll, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sessionsStore.Close(ctx) // writes the touches still buffered

	store, err := gorillastore.New(sessionsStore, nil, []byte("hash key: 32 random bytes, kept"), []byte("block key of 16."))
	if err != nil {
		log.Fatal(err)
	}

	e := echo.New()
	e.HideBanner = true
	e.Use(session.Middleware(store))
	// get returns the request's session; a cookie that no key accepts
	// means a new session, not an error page.
	get := func(c echo.Context) (*sessions.Session, error) {
		s, err := session.Get("session", c)
		var sc securecookie.Error
		if errors.As(err, &sc) && sc.IsDecode() {
			err = nil
		}
		return s, err
	}
	e.GET("/login", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Values["user"] = c.QueryParam("user")
		s.AddFlash("welcome")
		if err := s.Save(c.Request(), c.Response()); err != nil {
			return err
		}
		return c.String(http.StatusOK, "logged in")
	})
	e.GET("/", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		flashes := s.Flashes()
		if err := s.Save(c.Request(), c.Response()); err != nil { // unchanged: a batched touch
			return err
		}
		return c.String(http.StatusOK, fmt.Sprintf("user %v, flashes %v", s.Values["user"], flashes))
	})
	e.GET("/visit", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		gorillastore.Change(c.Request(), s, func(v map[any]any) {
			n, _ := v["visits"].(int)
			v["visits"] = n + 1
		})
		if err := s.Save(c.Request(), c.Response()); err != nil {
			return err
		}
		return c.String(http.StatusOK, fmt.Sprintf("visit %v", s.Values["visits"]))
	})
	e.GET("/logout", func(c echo.Context) error {
		s, err := get(c)
		if err != nil {
			return err
		}
		s.Options.MaxAge = -1
		if err := s.Save(c.Request(), c.Response()); err != nil {
			return err
		}
		return c.String(http.StatusOK, "logged out")
	})
	srv := httptest.NewServer(e)
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	for _, path := range []string{"/login?user=ada", "/", "/", "/visit", "/visit", "/logout", "/"} {
		resp, err := browser.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %s\n", path, body)
	}
	// Output:
	// /login?user=ada: logged in
	// /: user ada, flashes [welcome]
	// /: user ada, flashes []
	// /visit: visit 1
	// /visit: visit 2
	// /logout: logged out
	// /: user <nil>, flashes []
}
