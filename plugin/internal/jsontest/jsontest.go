// Package jsontest holds the plugin's hand-written JSON codecs to
// encoding/json: random values of a type, every field set in some of them,
// must decode to what encoding/json decodes and encode to the bytes it
// writes. A field added to a type and not to its codec fails the test.
package jsontest

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
)

// Rounds is how many random values each check tries.
const Rounds = 300

// Rand is the checks' source: fixed, so that a failure repeats.
func Rand() *rand.Rand { return rand.New(rand.NewPCG(13, 5)) }

// Decodes checks read against encoding/json on Rounds random values of T.
func Decodes[T any](t *testing.T, rng *rand.Rand, read func(s *jsonscan.Scanner, v *T) error) {
	t.Helper()
	for range Rounds {
		var v T
		Fill(t, rng, reflect.ValueOf(&v).Elem())
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var want, got T
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if err := jsonscan.Decode("test", b, &got, read); err != nil {
			t.Fatalf("%T: %v: %s", v, err, b)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%T decoded\n%#v\nencoding/json\n%#v\nfrom %s", v, got, want, b)
		}
	}
}

// Encodes checks enc against encoding/json's bytes on Rounds random values
// of T.
func Encodes[T any](t *testing.T, rng *rand.Rand, enc func(dst []byte, v *T) ([]byte, error)) {
	t.Helper()
	for range Rounds {
		var v T
		Fill(t, rng, reflect.ValueOf(&v).Elem())
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := enc(nil, &v)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%T wrote\n%s (%v)\nencoding/json\n%s", v, got, err, want)
		}
	}
}

var texts = []string{"", "a", "APP-1", "ü€😀", `with "quotes" and \ back`, "line\nbreak\ttab", "\u2028\u0001<>&",
	strings.Repeat("long text ", 8)}

// Fill sets v to a random value; it fails on a kind the codecs do not meet
// yet, so that a new one gets a case here.
func Fill(t *testing.T, rng *rand.Rand, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(texts[rng.IntN(len(texts))])
	case reflect.Bool:
		v.SetBool(rng.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		v.SetInt(rng.Int64N(2_000_001) - 1_000_000)
	case reflect.Pointer:
		if rng.IntN(3) > 0 {
			v.Set(reflect.New(v.Type().Elem()))
			Fill(t, rng, v.Elem())
		}
	case reflect.Slice:
		if n := rng.IntN(5); n > 0 { // else nil
			v.Set(reflect.MakeSlice(v.Type(), n-1, n-1))
			for i := range n - 1 {
				Fill(t, rng, v.Index(i))
			}
		}
	case reflect.Map:
		if n := rng.IntN(4); n > 0 {
			v.Set(reflect.MakeMap(v.Type()))
			for range n - 1 {
				val := reflect.New(v.Type().Elem()).Elem()
				Fill(t, rng, val)
				v.SetMapIndex(reflect.ValueOf(texts[rng.IntN(len(texts))]), val)
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			Fill(t, rng, v.Field(i))
		}
	case reflect.Interface: // a log line's field: what the plugin logs
		vals := []any{nil, "text <&>", true, 42, int64(-3), []string{"a", "b"}, []string(nil), 2.5, map[string]int{"z": 1, "a": 2}}
		if x := vals[rng.IntN(len(vals))]; x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		t.Fatalf("Fill: no case for %s", v.Type())
	}
}
