package codec_test

import (
	"fmt"
	"log"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/sessionstore/sessionstore/codec"
)

// Example stores a session as a BSON document in the shape express-session
// uses, so that Node and Go can share it, and reads it back.
func Example() {
	type Cookie struct {
		OriginalMaxAge int64     `bson:"originalMaxAge"` // milliseconds
		Expires        time.Time `bson:"expires"`
		HTTPOnly       bool      `bson:"httpOnly"`
		Path           string    `bson:"path"`
	}
	type Session struct {
		Cookie Cookie `bson:"cookie"`
		UserID string `bson:"userId"`
	}

	var c codec.BSON[Session] // the zero value is ready to use
	in := Session{
		Cookie: Cookie{
			OriginalMaxAge: 86400000,
			Expires:        time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
			HTTPOnly:       true,
			Path:           "/",
		},
		UserID: "u-1842",
	}
	data, err := c.Encode(in)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Format())
	fmt.Println(bson.Raw(data))

	var out Session
	if err := c.Decode(data, &out); err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.UserID, out.Cookie.Expires, out.Cookie.OriginalMaxAge)
	// Output:
	// document
	// {"cookie": {"originalMaxAge": {"$numberLong":"86400000"},"expires": {"$date":{"$numberLong":"1748779200000"}},"httpOnly": true,"path": "/"},"userId": "u-1842"}
	// u-1842 2025-06-01 12:00:00 +0000 UTC 86400000
}
