package ginstore_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/gorillastore"
	"github.com/sessionstore/sessionstore/gorillastore/ginstore"
)

// A gin router keeping gin-contrib sessions in MongoDB. This example needs
// a server, so it is compiled but not run here; integration/gorillastore
// runs it against the test server.
func Example() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI("mongodb://localhost:27017"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)

	sessionsStore, err := gorillastore.NewSessionStore(client.Database("app").Collection("sessions"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sessionsStore.Close(ctx) // writes the touches still buffered

	store, err := ginstore.New(sessionsStore, nil, []byte(os.Getenv("SESSION_HASH_KEY")), []byte(os.Getenv("SESSION_BLOCK_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	store.Options(sessions.Options{Path: "/", MaxAge: 7 * 86400, HttpOnly: true, SameSite: http.SameSiteLaxMode})

	r := gin.Default()
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
		if err := s.Save(); err != nil { // unchanged unless there were flashes: a batched touch
			c.String(http.StatusInternalServerError, err.Error())
			return
		}
		c.JSON(http.StatusOK, gin.H{"user": s.Get("user"), "flashes": flashes})
	})
	log.Fatal(r.Run(":3000"))
}
