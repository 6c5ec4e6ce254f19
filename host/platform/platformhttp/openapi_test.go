package platformhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestOpenAPIDescribesTheTraffic: docs/platform.openapi.json names the
// endpoints the client calls, no more, no fewer; and every request body
// the client sends and every answer the simulated platform gives, for a
// run of all seven calls, fit the document's schemas. The document cannot
// drift from the code unnoticed.
func TestOpenAPIDescribesTheTraffic(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "platform.openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["openapi"] != "3.1.0" || dig(doc, "info", "version") != "1" {
		t.Fatalf("openapi %v, version %v; want 3.1.0, contract 1", doc["openapi"], dig(doc, "info", "version"))
	}
	v := validator{doc: doc}

	fp, c := fixture(t, nil)
	type exchange struct {
		method, path string
		url          string // the path and query as sent
		request      []byte
	}
	var mu sync.Mutex
	var seen []exchange
	fp.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		mu.Lock()
		seen = append(seen, exchange{r.Method, r.URL.Path, r.URL.RequestURI(), body})
		mu.Unlock()
		return false
	})
	for name, call := range calls {
		if err := call(context.Background(), c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	var inDoc []string
	for path, ops := range doc["paths"].(map[string]any) {
		for method := range ops.(map[string]any) {
			inDoc = append(inDoc, strings.ToUpper(method)+" "+path)
		}
	}
	var called []string
	for i, e := range seen {
		seen[i].path = template(inDoc, e.method, e.path)
		called = append(called, e.method+" "+seen[i].path)
	}
	slices.Sort(inDoc)
	slices.Sort(called)
	if !slices.Equal(inDoc, slices.Compact(called)) {
		t.Fatalf("the document has %v, the client calls %v", inDoc, called)
	}

	for _, e := range seen {
		op := dig(doc, "paths", e.path, strings.ToLower(e.method)).(map[string]any)
		if e.method == http.MethodPost {
			if err := v.check(dig(op, "requestBody", "content", "application/json", "schema"), decode(t, e.request), "request"); err != nil {
				t.Errorf("%s %s request %s: %v", e.method, e.path, e.request, err)
			}
		}
		// The platform's answer to the same request, as the client got it.
		req, _ := http.NewRequest(e.method, fp.URL()+e.url, bytes.NewReader(e.request))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Idempotency-Key", "jira/1/0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		schema := v.resolve(dig(op, "responses", "200"))
		if err := v.check(dig(schema, "content", "application/json", "schema"), decode(t, answer), "answer"); err != nil {
			t.Errorf("%s %s answer %s: %v", e.method, e.path, answer, err)
		}
	}
}

// template is the document's path that a called path fits: itself, or
// one whose {parameter} segments stand for the called path's segments.
func template(inDoc []string, method, path string) string {
	called := strings.Split(path, "/")
	for _, op := range inDoc {
		m, p, _ := strings.Cut(op, " ")
		doc := strings.Split(p, "/")
		if m != method || len(doc) != len(called) {
			continue
		}
		fits := true
		for i := range doc {
			if doc[i] != called[i] && !(strings.HasPrefix(doc[i], "{") && strings.HasSuffix(doc[i], "}")) {
				fits = false
			}
		}
		if fits && (p == path || !slices.Contains(inDoc, method+" "+path)) {
			return p
		}
	}
	return path
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// validator checks a JSON value against the subset of JSON Schema the
// document uses: $ref, type, required, properties, additionalProperties
// false, items, oneOf, allOf, minimum, minLength.
type validator struct{ doc map[string]any }

func (v validator) resolve(s any) any {
	for {
		ref, ok := dig(s, "$ref").(string)
		if !ok {
			return s
		}
		s = dig(v.doc, strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
	}
}

func (v validator) check(schema, value any, at string) error {
	s, _ := v.resolve(schema).(map[string]any)
	if s == nil {
		return fmt.Errorf("%s: no schema", at)
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			if err := v.check(sub, value, at); err != nil {
				return err
			}
		}
	}
	if one, ok := s["oneOf"].([]any); ok {
		fits := 0
		for _, sub := range one {
			if v.check(sub, value, at) == nil {
				fits++
			}
		}
		if fits != 1 {
			return fmt.Errorf("%s: %v fits %d of oneOf", at, value, fits)
		}
	}
	switch s["type"] {
	case "object":
		m, ok := value.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object", at)
		}
		for _, r := range asList(s["required"]) {
			if _, ok := m[r]; !ok {
				return fmt.Errorf("%s.%s: missing", at, r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, val := range m {
			ps, ok := props[k]
			if !ok {
				if s["additionalProperties"] == false {
					return fmt.Errorf("%s.%s: not in the schema", at, k)
				}
				continue
			}
			if err := v.check(ps, val, at+"."+k); err != nil {
				return err
			}
		}
	case "array":
		a, ok := value.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array", at)
		}
		for i, it := range a {
			if err := v.check(s["items"], it, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "string":
		str, ok := value.(string)
		if !ok {
			return fmt.Errorf("%s: want a string", at)
		}
		if n, ok := s["minLength"].(float64); ok && len(str) < int(n) {
			return fmt.Errorf("%s: shorter than %v", at, n)
		}
	case "integer":
		n, ok := value.(float64)
		if !ok || n != float64(int64(n)) {
			return fmt.Errorf("%s: want an integer", at)
		}
		if lo, ok := s["minimum"].(float64); ok && n < lo {
			return fmt.Errorf("%s: under %v", at, lo)
		}
	case "boolean":
		if _, ok := value.(bool); !ok {
			return fmt.Errorf("%s: want a boolean", at)
		}
	case "null":
		if value != nil {
			return fmt.Errorf("%s: want null", at)
		}
	}
	return nil
}

func asList(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
