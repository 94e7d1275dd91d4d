package gorillastore_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/gorillastore"
	"github.com/sessionstore/sessionstore/gorillastore/ginstore"
	"github.com/sessionstore/sessionstore/integration/mongotest"
)

// A gin router with gin-contrib sessions kept in MongoDB, run here against
// the test server: a login that sets the user and a flash, a page that
// shows them (the flash once), a counter that concurrent requests cannot
// lose, and a logout.
func Example_gin() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(mongotest.URI()))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)
	coll := client.Database(mongotest.Database).Collection("gorillastore_example_gin")
	defer coll.Drop(ctx)

	sessionsStore, err := gorillastore.NewSessionStore(coll, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sessionsStore.Close(ctx) // writes the touches still buffered

	store, err := ginstore.New(sessionsStore, nil, []byte("hash key: 32 random bytes, kept"), []byte("block key of 16."))
	if err != nil {
		log.Fatal(err)
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(sessions.Sessions("session", store))
	r.GET("/login", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Set("user", c.Query("user"))
		s.AddFlash("welcome")
		if err := s.Save(); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.String(http.StatusOK, "logged in")
	})
	r.GET("/", func(c *gin.Context) {
		s := sessions.Default(c)
		flashes := s.Flashes()
		if err := s.Save(); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.String(http.StatusOK, "user %v, flashes %v", s.Get("user"), flashes)
	})
	r.GET("/visit", func(c *gin.Context) {
		s := sessions.Default(c)
		err := ginstore.Change(c, s, func(v map[any]any) {
			n, _ := v["visits"].(int)
			v["visits"] = n + 1
		})
		if err == nil {
			err = s.Save()
		}
		if err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.String(http.StatusOK, "visit %v", s.Get("visits"))
	})
	r.GET("/logout", func(c *gin.Context) {
		s := sessions.Default(c)
		s.Options(sessions.Options{Path: "/", MaxAge: -1})
		if err := s.Save(); err != nil {
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.String(http.StatusOK, "logged out")
	})
	srv := httptest.NewServer(r)
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
