package platform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// Data is the platform's data as a file holds it: what `jirasync platform
// import` reads and `export` writes, and a scenario's platform section.
// Sections are taken in file order, and an object may only name objects
// that exist already or come earlier; Export writes them in this order.
type Data struct {
	Organizations []Organization `json:"organizations"`
	Projects      []Project      `json:"projects"`
	Users         []User         `json:"users"`
	Groups        []Group        `json:"groups"`
	Links         []Link         `json:"links"`
}

// Sink receives a data file's objects one at a time, in file order, each
// validated (Validate) already, with where it is in the file ("users[3]").
// A sink may hold objects back to write them together; Flush, called at
// the end of every section, writes what it holds. Errors name their place
// in the file themselves (a FieldError whose Field starts with at).
type Sink interface {
	Organization(at string, o Organization) error
	Project(at string, p Project) error
	User(at string, u User) error
	Group(at string, g Group) error
	Link(at string, l Link) error
	Flush() error
}

// Each hands every object of d to sink, validated, in dependency order:
// what a scenario seeds.
func (d *Data) Each(sink Sink) error {
	// In order, stopping at the first error: a later section may name
	// what an earlier one failed to write.
	for _, step := range []func() error{
		func() error { return each("organizations", d.Organizations, sink.Organization, sink.Flush) },
		func() error { return each("projects", d.Projects, sink.Project, sink.Flush) },
		func() error { return each("users", d.Users, sink.User, sink.Flush) },
		func() error { return each("groups", d.Groups, sink.Group, sink.Flush) },
		func() error { return each("links", d.Links, sink.Link, sink.Flush) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

type validator interface{ Validate() error }

func each[T validator](section string, items []T, put func(string, T) error, flush func() error) error {
	for i, it := range items {
		if err := accept(fmt.Sprintf("%s[%d]", section, i), it, put); err != nil {
			return err
		}
	}
	return flush()
}

func accept[T validator](at string, it T, put func(string, T) error) error {
	if err := it.Validate(); err != nil {
		return In(at, err)
	}
	return put(at, it)
}

// Decode reads a data file from r and hands its objects to sink one at a
// time: the file is never held in memory whole, so it may hold millions of
// objects. The first error stops it, with where it was found
// ("users[3].emails[0].email: not an email address"). Unknown keys, wrong
// types, invalid UTF-8 and anything after the top-level object are errors.
func Decode(r io.Reader, sink Sink) error {
	dec := json.NewDecoder(&utf8Reader{r: r})
	dec.DisallowUnknownFields()
	if err := expectDelim(dec, '{', ""); err != nil {
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return syntaxErr(dec, "", err)
		}
		key, _ := t.(string)
		if seen[key] {
			return fieldErr(key, "given twice")
		}
		seen[key] = true
		switch key {
		case "organizations":
			err = decodeSection(dec, key, sink.Organization, sink.Flush)
		case "projects":
			err = decodeSection(dec, key, sink.Project, sink.Flush)
		case "users":
			err = decodeSection(dec, key, sink.User, sink.Flush)
		case "groups":
			err = decodeSection(dec, key, sink.Group, sink.Flush)
		case "links":
			err = decodeSection(dec, key, sink.Link, sink.Flush)
		default:
			return fieldErr(key, "unknown key (want organizations, projects, users, groups, links)")
		}
		if err != nil {
			return err
		}
	}
	if err := expectDelim(dec, '}', ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fieldErr("", "offset %d: data after the top-level object", dec.InputOffset())
	}
	return nil
}

func decodeSection[T validator](dec *json.Decoder, section string, put func(string, T) error, flush func() error) error {
	t, err := dec.Token()
	if err != nil {
		return syntaxErr(dec, section, err)
	}
	if t == nil { // null: an empty section
		return nil
	}
	if d, ok := t.(json.Delim); !ok || d != '[' {
		return fieldErr(section, "want an array")
	}
	for i := 0; dec.More(); i++ {
		at := fmt.Sprintf("%s[%d]", section, i)
		var it T
		if err := dec.Decode(&it); err != nil {
			return decodeErr(dec, at, err)
		}
		if err := accept(at, it, put); err != nil {
			return err
		}
	}
	if err := expectDelim(dec, ']', section); err != nil {
		return err
	}
	return flush()
}

func expectDelim(dec *json.Decoder, want json.Delim, at string) error {
	t, err := dec.Token()
	if err != nil {
		return syntaxErr(dec, at, err)
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return fieldErr(at, "offset %d: want %q", dec.InputOffset(), string(want))
	}
	return nil
}

func syntaxErr(dec *json.Decoder, at string, err error) error {
	if fe := (*FieldError)(nil); errors.As(err, &fe) {
		return fe
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fieldErr(at, "offset %d: %s", dec.InputOffset(), strings.TrimPrefix(err.Error(), "json: "))
}

// decodeErr turns a decoding error of the object at "at" into a
// FieldError naming the field.
func decodeErr(dec *json.Decoder, at string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		f := at
		if te.Field != "" {
			f = joinField(at, te.Field)
		}
		return fieldErr(f, "want %s, got %s", typeName(te.Type), te.Value)
	}
	if k, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fieldErr(at, "unknown key %s", k)
	}
	return syntaxErr(dec, at, err)
}

// joinField adds a path as encoding/json spells it ("emails.0.email" or
// "emails.email") to at.
func joinField(at, path string) string {
	if at == "" {
		return path
	}
	return at + "." + path
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Pointer:
		return typeName(t.Elem()) + " or null"
	}
	return t.String()
}

// DecodeObject decodes one JSON object from b into v strictly: valid
// UTF-8, no unknown keys, right types, nothing after it. Errors are
// FieldErrors naming the field.
func DecodeObject(b []byte, v any) error {
	if !utf8.Valid(b) {
		return fieldErr("", "body is not valid UTF-8")
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return fieldErr("", "body is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeErr(dec, "", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fieldErr("", "data after the JSON object")
	}
	return nil
}

// utf8Reader passes r through, failing at the first byte sequence that is
// not UTF-8: encoding/json would quietly turn it into U+FFFD, and stored
// text must be what was sent.
type utf8Reader struct {
	r       io.Reader
	carry   []byte // an incomplete sequence at the end of the last read
	offset  int64
	pending []byte // checked bytes that did not fit into the caller's buffer
	err     error  // the end (or failure) of r, once pending is handed out
}

func (u *utf8Reader) Read(p []byte) (int, error) {
	if len(u.pending) > 0 {
		n := copy(p, u.pending)
		u.pending = u.pending[n:]
		return n, nil
	}
	if u.err != nil {
		return 0, u.err
	}
	buf := make([]byte, len(u.carry), len(u.carry)+len(p))
	copy(buf, u.carry)
	n, err := u.r.Read(p[:cap(buf)-len(buf)])
	buf = append(buf, p[:n]...)
	// Keep back a sequence cut at the end of this read, unless the input
	// ended.
	keep := 0
	if err == nil {
		for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
			if utf8.RuneStart(buf[i]) {
				if !utf8.FullRune(buf[i:]) {
					keep = len(buf) - i
				}
				break
			}
		}
	}
	good := buf[:len(buf)-keep]
	if !utf8.Valid(good) {
		bad := 0
		for bad < len(good) {
			r, size := utf8.DecodeRune(good[bad:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			bad += size
		}
		return 0, fieldErr("", "offset %d: not valid UTF-8", u.offset+int64(bad))
	}
	u.carry = append(u.carry[:0], buf[len(good):]...)
	u.offset += int64(len(good))
	c := copy(p, good)
	u.pending = append(u.pending[:0], good[c:]...)
	if len(u.pending) > 0 {
		u.err = err
		return c, nil
	}
	return c, err
}
