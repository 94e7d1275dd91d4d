package mongofake

import (
	"math"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// applyUpdate returns doc changed by u: a replacement document, or update
// operators ($set, $setOnInsert, $unset, $inc, $min, $max, $currentDate)
// on top-level fields. insert is set for the document an upsert creates.
func applyUpdate(doc, u bson.Raw, insert bool) (bson.Raw, error) {
	es, err := elements(doc)
	if err != nil {
		return nil, err
	}
	ups, err := elements(u)
	if err != nil {
		return nil, err
	}
	if !isOperatorUpdate(u) {
		return replace(es, ups)
	}
	touched := make(map[string]bool)
	for _, op := range ups {
		if !strings.HasPrefix(op.key, "$") {
			return nil, errorf(codeFailedToParse, "update document mixes operators and fields: %s", op.key)
		}
		arg, ok := op.val.DocumentOK()
		if !ok {
			return nil, errorf(codeFailedToParse, "Modifiers operate on fields but we found type %s instead. For example: {$mod: {<field>: ...}} not {%s: %s}", op.val.Type, op.key, op.val)
		}
		fields, err := elements(arg)
		if err != nil {
			return nil, err
		}
		for _, f := range fields {
			if strings.Contains(f.key, ".") || f.key == "" || strings.HasPrefix(f.key, "$") {
				return nil, errorf(codeUnsupported, "mongofake: unsupported update path %q", f.key)
			}
			if touched[f.key] {
				return nil, errorf(codeConflictingUpdates, "Updating the path '%s' would create a conflict at '%s'", f.key, f.key)
			}
			touched[f.key] = true
			if es, err = applyOp(es, op.key, f, insert); err != nil {
				return nil, err
			}
		}
	}
	return build(es)
}

// isOperatorUpdate reports whether u is an update of operators rather than
// a replacement document.
func isOperatorUpdate(u bson.Raw) bool {
	es, err := elements(u)
	return err == nil && len(es) > 0 && strings.HasPrefix(es[0].key, "$")
}

// replace returns a replacement document keeping the _id of es.
func replace(es, with []elem) (bson.Raw, error) {
	out := make([]elem, 0, len(with)+1)
	id, hasID := field(es, "_id")
	if hasID {
		out = append(out, elem{"_id", id})
	}
	for _, e := range with {
		if strings.HasPrefix(e.key, "$") {
			return nil, errorf(codeFailedToParse, "replacement document mixes fields and operators: %s", e.key)
		}
		if e.key == "_id" {
			if hasID && compare(id, e.val) != 0 {
				return nil, errorf(codeImmutableField, "the (immutable) field '_id' was found to have been altered")
			}
			if !hasID {
				out = append([]elem{e}, out...)
			}
			continue
		}
		out = append(out, e)
	}
	return build(out)
}

func field(es []elem, key string) (bson.RawValue, bool) {
	for _, e := range es {
		if e.key == key {
			return e.val, true
		}
	}
	return bson.RawValue{}, false
}

// set returns es with key set to v, in place if present, else appended.
func set(es []elem, key string, v bson.RawValue) []elem {
	for i, e := range es {
		if e.key == key {
			es[i].val = v
			return es
		}
	}
	return append(es, elem{key, v})
}

func applyOp(es []elem, op string, f elem, insert bool) ([]elem, error) {
	old, present := field(es, f.key)
	if f.key == "_id" && op != "$setOnInsert" && present && (op != "$set" || compare(old, f.val) != 0) {
		return nil, errorf(codeImmutableField, "Performing an update on the path '_id' would modify the immutable field '_id'")
	}
	switch op {
	case "$set":
		return set(es, f.key, f.val), nil
	case "$setOnInsert":
		if insert {
			return set(es, f.key, f.val), nil
		}
		return es, nil
	case "$unset":
		out := es[:0]
		for _, e := range es {
			if e.key != f.key {
				out = append(out, e)
			}
		}
		return out, nil
	case "$inc":
		if !isNumber(f.val) {
			return nil, errorf(codeTypeMismatch, "Cannot increment with non-numeric argument: {%s: %s}", f.key, f.val)
		}
		if !present {
			return set(es, f.key, f.val), nil
		}
		if !isNumber(old) {
			return nil, errorf(codeTypeMismatch, "Cannot apply $inc to a value of non-numeric type. {_id: ...} has the field '%s' of non-numeric type %s", f.key, old.Type)
		}
		return set(es, f.key, add(old, f.val)), nil
	case "$min", "$max":
		if c := compare(f.val, old); !present || (op == "$min" && c < 0) || (op == "$max" && c > 0) {
			return set(es, f.key, f.val), nil
		}
		return es, nil
	case "$currentDate":
		if f.val.Type != bson.TypeBoolean {
			return nil, errorf(codeUnsupported, "mongofake: $currentDate supports only true")
		}
		return set(es, f.key, bson.RawValue{Type: bson.TypeDateTime, Value: int64Value(time.Now().UnixMilli()).Value}), nil
	}
	return nil, errorf(codeFailedToParse, "Unknown modifier: %s. Expected a valid update modifier or pipeline-style update specified as an array", op)
}

// add adds two numbers with MongoDB's type promotion: int32 overflows to
// int64, a double makes a double.
func add(a, b bson.RawValue) bson.RawValue {
	if a.Type == bson.TypeDouble || b.Type == bson.TypeDouble {
		fa, _ := a.AsFloat64OK()
		fb, _ := b.AsFloat64OK()
		return doubleValue(fa + fb)
	}
	x, y := a.AsInt64(), b.AsInt64()
	sum := x + y
	if (sum > x) != (y > 0) { // int64 overflow: MongoDB errors; a double is close enough
		return doubleValue(float64(x) + float64(y))
	}
	if a.Type == bson.TypeInt32 && b.Type == bson.TypeInt32 && sum >= math.MinInt32 && sum <= math.MaxInt32 {
		return intValue(int32(sum))
	}
	return int64Value(sum)
}

// upsertSeed returns the document an upsert starts from: the equality
// conditions of the filter q on top-level fields, _id first.
func upsertSeed(q bson.Raw) (bson.Raw, error) {
	var es []elem
	if err := seedFields(q, &es); err != nil {
		return nil, err
	}
	for i, e := range es {
		if e.key == "_id" && i > 0 {
			es = append(append([]elem{e}, es[:i]...), es[i+1:]...)
			break
		}
	}
	return build(es)
}

func seedFields(q bson.Raw, es *[]elem) error {
	if len(q) == 0 {
		return nil
	}
	conds, err := elements(q)
	if err != nil {
		return err
	}
	for _, c := range conds {
		if c.key == "$and" {
			arr, ok := c.val.ArrayOK()
			if !ok {
				return errorf(codeBadValue, "$and must be an array")
			}
			vals, _ := arr.Values()
			for _, v := range vals {
				if d, ok := v.DocumentOK(); ok {
					if err := seedFields(d, es); err != nil {
						return err
					}
				}
			}
			continue
		}
		if strings.HasPrefix(c.key, "$") || c.val.Type == bson.TypeRegex {
			continue
		}
		v := c.val
		if ops, ok := operators(c.val); ok {
			eq, ok := field(ops, "$eq")
			if !ok {
				continue
			}
			v = eq
		}
		if strings.Contains(c.key, ".") {
			return errorf(codeUnsupported, "mongofake: unsupported upsert of the dotted path %q", c.key)
		}
		if _, dup := field(*es, c.key); dup {
			return errorf(codeNotSingleValueField, "cannot infer query fields to set, path '%s' is matched twice", c.key)
		}
		*es = append(*es, elem{c.key, v})
	}
	return nil
}
