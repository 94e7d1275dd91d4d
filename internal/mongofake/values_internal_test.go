package mongofake

import (
	"errors"
	"math"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// rv marshals a Go value into a BSON value; nil is BSON null.
func rv(t *testing.T, v any) bson.RawValue {
	t.Helper()
	if v == nil {
		return bson.RawValue{Type: bson.TypeNull}
	}
	typ, b, err := bson.MarshalValue(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return bson.RawValue{Type: typ, Value: b}
}

func doc(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// checkAscending asserts that compare orders vals as listed, each pair
// both ways round.
func checkAscending(t *testing.T, vals []bson.RawValue) {
	t.Helper()
	for i, a := range vals {
		for j, b := range vals {
			if got, want := compare(a, b), sign(i-j); got != want {
				t.Errorf("compare(%v %v, %v %v) = %d, want %d", a.Type, a, b.Type, b, got, want)
			}
		}
	}
}

// MongoDB's comparison order across BSON types: MinKey, Null, Numbers,
// Symbol and String, Object, Array, BinData, ObjectId, Boolean, Date,
// Timestamp, Regular Expression, then DBPointer, JavaScript and
// JavaScript with scope as the server ranks them, and MaxKey last.
func TestTypeBrackets(t *testing.T) {
	oid, _ := bson.ObjectIDFromHex("000000000000000000000000")
	checkAscending(t, []bson.RawValue{
		rv(t, bson.MinKey{}),
		rv(t, nil),
		rv(t, math.Inf(1)), // the greatest number is below the least string
		rv(t, ""),
		rv(t, bson.D{}),
		rv(t, bson.A{}),
		rv(t, bson.Binary{Data: []byte{}}),
		rv(t, oid),
		rv(t, false),
		rv(t, bson.DateTime(math.MinInt64)),
		rv(t, bson.Timestamp{}),
		rv(t, bson.Regex{}),
		rv(t, bson.DBPointer{DB: "a", Pointer: oid}),
		rv(t, bson.JavaScript("")),
		rv(t, bson.CodeWithScope{Code: "", Scope: bson.D{}}),
		rv(t, bson.MaxKey{}),
	})
	// Null, undefined and a missing field are one bracket: a missing
	// field sorts as null.
	for _, v := range []bson.RawValue{rv(t, bson.Undefined{}), {}} {
		if c := compare(v, rv(t, nil)); c != 0 {
			t.Errorf("compare(%v, null) = %d", v.Type, c)
		}
	}
	if c := compare(rv(t, bson.MinKey{}), rv(t, bson.MinKey{})); c != 0 {
		t.Errorf("MinKey != MinKey")
	}
	if c := compare(rv(t, bson.MaxKey{}), rv(t, bson.MaxKey{})); c != 0 {
		t.Errorf("MaxKey != MaxKey")
	}
	if typeOrder(bson.Type(0x7e)) != 50 {
		t.Error("an unknown type does not rank between the known ones and MaxKey")
	}
}

// Numbers compare by value whatever their type: int32, int64, double
// and decimal; NaN is below every other number and equal to itself.
func TestCompareNumbers(t *testing.T) {
	dec := func(s string) bson.RawValue {
		d, err := bson.ParseDecimal128(s)
		if err != nil {
			t.Fatal(err)
		}
		return rv(t, d)
	}
	checkAscending(t, []bson.RawValue{
		rv(t, math.NaN()),
		rv(t, math.Inf(-1)),
		rv(t, int64(math.MinInt64)),
		rv(t, -2.5),
		rv(t, int64(-2)),
		rv(t, int32(0)),
		dec("0.5"),
		rv(t, int32(1)),
		dec("1.5"),
		rv(t, 2.0),
		rv(t, float64(1<<53)),
		rv(t, int64(1<<53+1)), // beyond a double's precision, compared exactly
		rv(t, int64(math.MaxInt64)),
		rv(t, math.Inf(1)),
	})
	for _, pair := range [][2]bson.RawValue{
		{rv(t, int32(1)), rv(t, int64(1))},
		{rv(t, int64(1)), rv(t, 1.0)},
		{rv(t, 1.0), rv(t, int32(1))},
		{dec("1"), rv(t, int32(1))},
		{dec("1.0"), rv(t, 1.0)},
		{rv(t, math.NaN()), rv(t, math.NaN())},
		{dec("NaN"), rv(t, math.NaN())},
		{dec("-Infinity"), rv(t, math.Inf(-1))},
		{rv(t, 0.0), rv(t, math.Copysign(0, -1))},
	} {
		if c := compare(pair[0], pair[1]); c != 0 {
			t.Errorf("compare(%v %v, %v %v) = %d, want 0", pair[0].Type, pair[0], pair[1].Type, pair[1], c)
		}
	}
	if compare(rv(t, int64(math.MinInt64)), rv(t, -math.MaxFloat64)) != 1 {
		t.Error("MinInt64 is not above -MaxFloat64")
	}
}

// Values of one bracket compare as MongoDB documents: strings bytewise
// (a symbol as its string), BinData by length, then subtype, then bytes,
// documents field by field (type, name, value), arrays element by
// element, a prefix first.
func TestCompareWithinBracket(t *testing.T) {
	oid := func(s string) bson.ObjectID {
		id, err := bson.ObjectIDFromHex(s)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	for name, vals := range map[string][]bson.RawValue{
		"strings": {rv(t, ""), rv(t, "B"), rv(t, "a"), rv(t, "ab"), rv(t, "b")},
		"binary": {
			rv(t, bson.Binary{Subtype: 0x80, Data: []byte{9}}),
			rv(t, bson.Binary{Subtype: 0, Data: []byte{1, 0}}),
			rv(t, bson.Binary{Subtype: 0, Data: []byte{1, 1}}),
			rv(t, bson.Binary{Subtype: 4, Data: []byte{0, 0}}),
		},
		"object ids": {rv(t, oid("000000000000000000000001")), rv(t, oid("0000000000000000000000ff")), rv(t, oid("010000000000000000000000"))},
		"booleans":   {rv(t, false), rv(t, true)},
		"dates":      {rv(t, bson.DateTime(-1)), rv(t, bson.DateTime(0)), rv(t, bson.DateTime(1))},
		"timestamps": {rv(t, bson.Timestamp{T: 1, I: 9}), rv(t, bson.Timestamp{T: 2, I: 0}), rv(t, bson.Timestamp{T: 2, I: 1}), rv(t, bson.Timestamp{T: math.MaxUint32})},
		"documents": {
			rv(t, bson.D{}),
			rv(t, bson.D{{Key: "a", Value: nil}}),
			rv(t, bson.D{{Key: "b", Value: nil}}),
			rv(t, bson.D{{Key: "a", Value: int32(1)}}), // the field's type decides before its name
			rv(t, bson.D{{Key: "a", Value: int64(1)}, {Key: "b", Value: int32(1)}}),
			rv(t, bson.D{{Key: "a", Value: 1.5}}),
			rv(t, bson.D{{Key: "b", Value: int32(0)}}), // same type bracket: the name decides before the value
			rv(t, bson.D{{Key: "b", Value: 1.0}}),
			rv(t, bson.D{{Key: "a", Value: ""}}),
			rv(t, bson.D{{Key: "a", Value: bson.D{{Key: "x", Value: true}}}}),
		},
		"arrays":  {rv(t, bson.A{}), rv(t, bson.A{int32(1)}), rv(t, bson.A{int32(1), "x"}), rv(t, bson.A{int64(2)}), rv(t, bson.A{"a"})},
		"regexes": {rv(t, bson.Regex{Pattern: "a"}), rv(t, bson.Regex{Pattern: "a", Options: "i"}), rv(t, bson.Regex{Pattern: "ab"})},
		"code":    {rv(t, bson.JavaScript("b")), rv(t, bson.JavaScript("ba")), rv(t, bson.JavaScript("c"))},
	} {
		t.Run(name, func(t *testing.T) { checkAscending(t, vals) })
	}
	if c := compare(rv(t, bson.Symbol("abc")), rv(t, "abc")); c != 0 {
		t.Errorf("a symbol and the same string compare %d", c)
	}
	if c := compare(rv(t, bson.Symbol("b")), rv(t, "a")); c != 1 {
		t.Errorf("symbol b vs string a = %d", c)
	}
}

// Equal _ids have one key: 1, NumberLong(1) and 1.0 are the same _id;
// 1.5, "1" and true are others.
func TestIDKey(t *testing.T) {
	one := idKey(rv(t, int32(1)))
	for _, v := range []any{int64(1), 1.0} {
		if idKey(rv(t, v)) != one {
			t.Errorf("idKey(%T %v) differs from idKey(1)", v, v)
		}
	}
	seen := map[string]any{one: 1}
	for _, v := range []any{1.5, math.Ldexp(1, 70), math.Inf(1), "1", true, int64(-1)} {
		k := idKey(rv(t, v))
		if prev, dup := seen[k]; dup {
			t.Errorf("idKey(%T %v) = idKey(%v)", v, v, prev)
		}
		seen[k] = v
	}
}

func mustMatch(t *testing.T, d bson.Raw, filter bson.D) bool {
	t.Helper()
	ok, err := matches(d, doc(t, filter))
	if err != nil {
		t.Fatalf("matches(%v, %v): %v", d, filter, err)
	}
	return ok
}

// $not inverts an operator expression or a regex, missing fields
// included; anything else is an error.
func TestMatchNot(t *testing.T) {
	docs := map[string]bson.Raw{
		"four":    doc(t, bson.D{{Key: "n", Value: int32(4)}, {Key: "s", Value: "apple"}}),
		"six":     doc(t, bson.D{{Key: "n", Value: 6.0}, {Key: "s", Value: bson.Symbol("berry")}}),
		"missing": doc(t, bson.D{}),
		"string":  doc(t, bson.D{{Key: "n", Value: "7"}, {Key: "s", Value: int32(1)}}),
		"array":   doc(t, bson.D{{Key: "n", Value: bson.A{int32(1), int64(9)}}}),
	}
	for _, c := range []struct {
		name   string
		filter bson.D
		want   string // the documents it matches, in the order above
	}{
		{"$not $gt", bson.D{{Key: "n", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gt", Value: int64(5)}}}}}}, "four missing string"},
		{"$not range", bson.D{{Key: "n", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$gte", Value: 2}, {Key: "$lte", Value: 8}}}}}}, "missing string"}, // each bound may hold for another element
		{"$not regex", bson.D{{Key: "s", Value: bson.D{{Key: "$not", Value: bson.Regex{Pattern: "^a"}}}}}, "six missing string array"},
		{"$not $regex", bson.D{{Key: "s", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$regex", Value: "RR"}, {Key: "$options", Value: "i"}}}}}}, "four missing string array"},
		{"$not $in", bson.D{{Key: "n", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$in", Value: bson.A{int64(4), 9.0}}}}}}}, "six missing string"},
		{"$not $exists", bson.D{{Key: "n", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$exists", Value: true}}}}}}, "missing"},
	} {
		var got []string
		for _, name := range []string{"four", "six", "missing", "string", "array"} {
			if mustMatch(t, docs[name], c.filter) {
				got = append(got, name)
			}
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s matches %v, want %s", c.name, got, c.want)
		}
	}
	for _, bad := range []any{int32(5), "x", bson.D{}, bson.D{{Key: "a", Value: 1}}, bson.D{{Key: "$in", Value: 5}}, bson.D{{Key: "$regex", Value: "("}}} {
		_, err := matches(docs["four"], doc(t, bson.D{{Key: "n", Value: bson.D{{Key: "$not", Value: bad}}}}))
		var ce *cmdError
		if !errors.As(err, &ce) || ce.code != codeBadValue || ce.Error() == "" {
			t.Errorf("$not: %v: error %v, want BadValue", bad, err)
		}
	}
}

// Ranges keep to the type bracket of their bound: {$gt: 1} never matches
// a string. {$gte: null} and {$lte: null} match null and missing fields,
// {$gt: null} and {$lt: null} nothing.
func TestMatchRangeBrackets(t *testing.T) {
	num := doc(t, bson.D{{Key: "v", Value: int32(2)}})
	str := doc(t, bson.D{{Key: "v", Value: "2"}})
	null := doc(t, bson.D{{Key: "v", Value: nil}})
	none := doc(t, bson.D{})
	for _, c := range []struct {
		d    bson.Raw
		op   string
		arg  any
		want bool
	}{
		{num, "$gt", int64(1), true},
		{str, "$gt", int64(1), false},
		{str, "$gt", "1", true},
		{num, "$lt", "3", false},
		{num, "$lte", 2.0, true},
		{null, "$gte", nil, true},
		{none, "$gte", nil, true},
		{none, "$lte", nil, true},
		{none, "$gt", nil, false},
		{null, "$lt", nil, false},
		{num, "$gte", nil, false},
		{none, "$lt", int32(5), false},
	} {
		if got := mustMatch(t, c.d, bson.D{{Key: "v", Value: bson.D{{Key: c.op, Value: c.arg}}}}); got != c.want {
			t.Errorf("%v matches {v: {%s: %v}} = %v, want %v", c.d, c.op, c.arg, got, c.want)
		}
	}
}

// An upsert starts from the equality conditions of its filter, $and
// included, _id first; operators other than $eq and regexes add nothing.
func TestUpsertSeed(t *testing.T) {
	q := doc(t, bson.D{
		{Key: "a", Value: "x"},
		{Key: "b", Value: bson.D{{Key: "$eq", Value: int32(2)}}},
		{Key: "c", Value: bson.D{{Key: "$gt", Value: 1}}},
		{Key: "d", Value: bson.Regex{Pattern: "^d"}},
		{Key: "$and", Value: bson.A{bson.D{{Key: "e", Value: int64(3)}}, bson.D{{Key: "_id", Value: "id"}}, "not a document"}},
		{Key: "$or", Value: bson.A{bson.D{{Key: "f", Value: 1}}, bson.D{{Key: "f", Value: 2}}}},
		{Key: "$comment", Value: "hi"},
		{Key: "g", Value: bson.D{{Key: "h", Value: 1}}},
	})
	seed, err := upsertSeed(q)
	want := `{"_id": "id","a": "x","b": {"$numberInt":"2"},"e": {"$numberLong":"3"},"g": {"h": {"$numberInt":"1"}}}`
	if err != nil || seed.String() != want {
		t.Fatalf("upsertSeed = %v, %v; want %s", seed, err, want)
	}
	if seed, err := upsertSeed(nil); err != nil || len(seed) != 5 {
		t.Fatalf("upsertSeed(nil) = %v, %v", seed, err)
	}
	for _, c := range []struct {
		q    bson.D
		code int32
	}{
		{bson.D{{Key: "a", Value: 1}, {Key: "$and", Value: bson.A{bson.D{{Key: "a", Value: 1}}}}}, codeNotSingleValueField},
		{bson.D{{Key: "a", Value: 1}, {Key: "a", Value: bson.D{{Key: "$eq", Value: 2}}}}, codeNotSingleValueField},
		{bson.D{{Key: "$and", Value: bson.D{}}}, codeBadValue},
		{bson.D{{Key: "$and", Value: bson.A{bson.D{{Key: "$and", Value: 1}}}}}, codeBadValue},
		{bson.D{{Key: "a.b", Value: 1}}, codeUnsupported},
	} {
		_, err := upsertSeed(doc(t, c.q))
		var ce *cmdError
		if !errors.As(err, &ce) || ce.code != c.code {
			t.Errorf("upsertSeed(%v): error %v, want code %d", c.q, err, c.code)
		}
	}
	// A dotted path with an operator other than $eq seeds nothing.
	if seed, err := upsertSeed(doc(t, bson.D{{Key: "a.b", Value: bson.D{{Key: "$gt", Value: 1}}}})); err != nil || len(seed) != 5 {
		t.Errorf("upsertSeed of a dotted range = %v, %v", seed, err)
	}
}

// Errors other than a cmdError become BadValue write errors.
func TestWriteError(t *testing.T) {
	we := writeError(3, errors.New("boom"))
	if len(we) != 3 || we[0].Value != int32(3) || we[1].Value != int32(codeBadValue) || we[2].Value != "boom" {
		t.Fatalf("writeError = %v", we)
	}
}
