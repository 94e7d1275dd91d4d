package scsstore_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"time"

	"github.com/alexedwards/scs/v2"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/sessionstore/sessionstore/integration/mongotest"
	"github.com/sessionstore/sessionstore/scsstore"
)

// An scs SessionManager keeping its sessions in MongoDB, run here against
// the test server. With IdleTimeout set, requests that only read the
// session extend it through the store's batched touches.
func Example() {
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(mongotest.URI()))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Disconnect(ctx)
	coll := client.Database(mongotest.Database).Collection("scsstore_example")
	defer coll.Drop(ctx)

	sessions, err := scsstore.NewSessionStore(coll, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sessions.Close(ctx) // writes the touches still buffered

	sm := scs.New()
	sm.Store = scsstore.New(sessions, nil)
	sm.IdleTimeout = 30 * time.Minute

	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "user", "ada")
		io.WriteString(w, "logged in")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", sm.GetString(r.Context(), "user"))
	})
	srv := httptest.NewServer(sm.LoadAndSave(mux))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	for _, path := range []string{"/login", "/"} {
		resp, err := browser.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %s\n", path, body)
	}
	// Output:
	// /login: logged in
	// /: hello ada
}
