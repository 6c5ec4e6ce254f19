package guest

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
)

// TestDecodersAgree holds each answer decoder to encoding/json: random
// values of its type, every field set in some of them (nil, empty and
// filled slices and pointers, strings with escapes and non-ASCII), are
// encoded by encoding/json and must decode to what encoding/json decodes.
// A member the decoder does not know (a field added to the ABI and not
// here) fails it.
func TestDecodersAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 5))
	for range 300 {
		agree(t, rng, noMembers)
		agree(t, rng, installationMember)
		agree(t, rng, jiraMember)
		agree(t, rng, groupsLinkedMember)
		agree(t, rng, usersMember)
		agree(t, rng, assignMember)
		agree(t, rng, stateMember)
		agree(t, rng, groupGetMember)
		agree(t, rng, userGetMember)
	}
}

func agree[T any](t *testing.T, rng *rand.Rand, member decoder[T]) {
	t.Helper()
	var v T
	fill(t, rng, reflect.ValueOf(&v).Elem())
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var want, got T
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if err := decodeAnswer(b, &got, faultOf(&got), member); err != nil {
		t.Fatalf("%T: %v: %s", v, err, b)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%T decoded\n%#v\nencoding/json\n%#v\nfrom %s", v, got, want, b)
	}
}

func faultOf[T any](v *T) *abi.Fault {
	return reflect.ValueOf(v).Elem().FieldByName("Fault").Addr().Interface().(*abi.Fault)
}

var texts = []string{"", "a", "APP-1", "ü€😀", `with "quotes" and \ back`, "line\nbreak\ttab", "\u2028\u0001<>&",
	strings.Repeat("long text ", 8)}

// fill sets v to a random value; it fails on a kind the answers do not
// have yet, so that a new one gets a case here.
func fill(t *testing.T, rng *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(texts[rng.IntN(len(texts))])
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		v.SetInt(rng.Int64N(2_000_001) - 1_000_000)
	case reflect.Map:
		if n := rng.IntN(4); n > 0 {
			v.Set(reflect.MakeMap(v.Type()))
			for range n {
				val := reflect.New(v.Type().Elem()).Elem()
				fill(t, rng, val)
				v.SetMapIndex(reflect.ValueOf(texts[rng.IntN(len(texts))]), val)
			}
		}
	case reflect.Interface: // a log line's field: what the plugin logs
		vals := []any{nil, "text <&>", true, 42, int64(-3), []string{"a", "b"}, []string(nil), 2.5, map[string]int{"z": 1, "a": 2}}
		if x := vals[rng.IntN(len(vals))]; x != nil {
			v.Set(reflect.ValueOf(x))
		}
	case reflect.Pointer:
		if rng.IntN(3) > 0 {
			v.Set(reflect.New(v.Type().Elem()))
			fill(t, rng, v.Elem())
		}
	case reflect.Slice:
		switch n := rng.IntN(5); n {
		case 0: // nil
		default:
			v.Set(reflect.MakeSlice(v.Type(), n-1, n-1))
			for i := range n - 1 {
				fill(t, rng, v.Index(i))
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, rng, v.Field(i))
		}
	default:
		t.Fatalf("fill: no case for %s", v.Type())
	}
}

// TestDecodersRefuse: what encoding/json refuses, the decoders refuse, and
// what it accepts (null, unknown members, nulls for members) they accept
// alike. Keys differ in one way, on purpose: they match exactly, as the
// ABI schema spells them, where encoding/json ignores case.
func TestDecodersRefuse(t *testing.T) {
	for _, c := range []struct {
		answer string
		ok     bool
	}{
		{`null`, true},
		{`{}`, true},
		{` {"unknown":[1,{"x":null}],"changed":3} `, true},
		{`{"changed":null,"error":null}`, true},
		{`{"error":{"code":"unavailable","message":"down","extra":1}}`, true},
		{`{"changed":"1"}`, false},
		{`{"changed":1.5}`, false},
		{`{"changed":1e3}`, false},
		{`{"changed":true}`, false},
		{`{"error":"x"}`, false},
		{`{"error":{"code":5}}`, false},
		{`[]`, false},
		{`"x"`, false},
		{``, false},
		{`{`, false},
		{`{"changed":}`, false},
		{`{"changed":1} x`, false},
		{`{"changed":1,}`, false},
	} {
		var want, got abi.GroupsAssignResponse
		wantErr := json.Unmarshal([]byte(c.answer), &want)
		err := decodeAnswer([]byte(c.answer), &got, &got.Fault, assignMember)
		if (wantErr == nil) != c.ok || (err == nil) != c.ok {
			t.Errorf("%s: decoder %v, encoding/json %v, want ok %v", c.answer, err, wantErr, c.ok)
		}
		if c.ok && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded %+v, encoding/json %+v", c.answer, got, want)
		}
	}
	var got abi.StateGetResponse
	if err := decodeAnswer([]byte(`{"Value":"x","FOUND":true}`), &got, &got.Fault, stateMember); err != nil || got.Value != "" || got.Found {
		t.Errorf("keys of another case: %+v, %v; want them skipped", got, err)
	}
}

// TestEncodersAgree holds each request encoder to encoding/json's bytes on
// random values of its type, every field set in some of them.
func TestEncodersAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for range 300 {
		same(t, rng, encodeEmpty)
		same(t, rng, encodeLog)
		same(t, rng, encodeJiraRequest)
		same(t, rng, encodeGroupsLinked)
		same(t, rng, encodeUsersByEmail)
		same(t, rng, encodeGroupsAssign)
		same(t, rng, encodeStateGet)
		same(t, rng, encodeStatePut)
		same(t, rng, encodeGroupGet)
		same(t, rng, encodeUserGet)
	}
}

func same[T any](t *testing.T, rng *rand.Rand, enc encoder[T]) {
	t.Helper()
	var v T
	fill(t, rng, reflect.ValueOf(&v).Elem())
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := enc(nil, &v)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%T wrote\n%s (%v)\nencoding/json\n%s", v, got, err, want)
	}
}
