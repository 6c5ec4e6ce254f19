package fakejira

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// rfcRequest is the example request of RFC 5849 §3.4.1.1.
func rfcRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b", strings.NewReader("c2&a3=2+q"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// Folded over lines as in the RFC, to exercise the header parser too.
	r.Header.Set("Authorization", `OAuth realm="Example",
               oauth_consumer_key="9djdj82h48djs9d2",
               oauth_token="kkk9d7dh3k39sjv7",
               oauth_signature_method="HMAC-SHA1",
               oauth_timestamp="137131201",
               oauth_nonce="7d8f3e4a",
               oauth_signature="bYT5CMsGcbgUdFHObYMEfcx6bsw%3D"`)
	return r
}

func TestSignatureBaseStringRFC5849(t *testing.T) {
	r := rfcRequest()
	sr, err := gatherSigned(r)
	if err != nil || sr.malformed != nil {
		t.Fatalf("gatherSigned: %v %v", err, sr.malformed)
	}

	// §3.4.1.3.2, the normalized parameters, printed in the RFC on three lines.
	wantParams := "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9dj" +
		"dj82h48djs9d2&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1" +
		"&oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7"
	if got := normalizeParams(sr.params); got != wantParams {
		t.Errorf("normalized parameters\n got %s\nwant %s", got, wantParams)
	}

	// §3.4.1.1, the signature base string, printed in the RFC on five lines.
	want := "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q" +
		"%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_" +
		"key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m" +
		"ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk" +
		"9d7dh3k39sjv7"
	if got := sr.baseString(); got != want {
		t.Errorf("base string\n got %s\nwant %s", got, want)
	}

	if got := sr.protocol["oauth_signature"]; got != "bYT5CMsGcbgUdFHObYMEfcx6bsw=" {
		t.Errorf("oauth_signature decoded to %q", got)
	}
	if _, ok := sr.protocol["realm"]; ok {
		t.Error("realm was taken as a protocol parameter")
	}
	// Handlers must still be able to read the body the signature consumed.
	if b, err := io.ReadAll(r.Body); err != nil || string(b) != "c2&a3=2+q" {
		t.Errorf("body after gathering: %q, %v", b, err)
	}
}

func TestBaseStringURI(t *testing.T) {
	tests := []struct {
		name, target, host, want string
	}{
		// The two examples of §3.4.1.2.
		{"default port dropped, case folded", "http://EXAMPLE.COM:80/r%20v/X?id=123", "", "http://example.com/r%20v/X"},
		{"other port kept", "https://www.example.net:8080/?q=1", "", "https://www.example.net:8080/"},
		{"https default port", "https://example.com:443/a", "", "https://example.com/a"},
		{"443 is not http's default", "http://example.com:443/a", "", "http://example.com:443/a"},
		{"loopback with port", "http://127.0.0.1:41234/rest/api/2/user?username=x", "", "http://127.0.0.1:41234/rest/api/2/user"},
		{"ipv6 default port", "http://[::1]:80/p", "", "http://[::1]/p"},
		{"host header wins", "http://127.0.0.1:1/p", "Jira.Example.COM", "http://jira.example.com/p"},
		{"path escapes kept as sent", "http://h/a%2Fb/c%7E", "", "http://h/a%2Fb/c%7E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			if tt.host != "" {
				r.Host = tt.host
			}
			if got := baseStringURI(r); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPercentEncode(t *testing.T) {
	tests := []struct{ in, want string }{
		// §3.6: unreserved characters stay as they are.
		{"abcXYZ019-._~", "abcXYZ019-._~"},
		{"", ""},
		{" ", "%20"},
		{"+", "%2B"},
		{"%", "%25"},
		{"*", "%2A"},
		{"=&/?#:@!$'()", "%3D%26%2F%3F%23%3A%40%21%24%27%28%29"},
		// Non-ASCII is encoded as its UTF-8 bytes, hex in upper case.
		{"é", "%C3%A9"},
		{"☃", "%E2%98%83"},
		{"\x00\xff", "%00%FF"},
	}
	for _, tt := range tests {
		if got := percentEncode(tt.in); got != tt.want {
			t.Errorf("percentEncode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeParamsSortsEncodedBytes(t *testing.T) {
	// Sorting happens after encoding, on bytes: "a%20" < "a+" would not hold
	// before encoding ('+' < ' ' is false), and uppercase sorts before
	// lowercase. Equal names sort by value.
	in := []param{{"b", "2"}, {"a b", "x"}, {"a", "z"}, {"a", "y"}, {"B", "1"}, {"a+", ""}}
	want := "B=1&a=y&a=z&a%20b=x&a%2B=&b=2"
	if got := normalizeParams(in); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   []param
		oauth  bool
		err    bool
	}{
		{"quoted", `OAuth oauth_consumer_key="k", oauth_nonce="n%2Bx"`, []param{{"oauth_consumer_key", "k"}, {"oauth_nonce", "n+x"}}, true, false},
		{"plus stays plus", `OAuth a="1+2"`, []param{{"a", "1+2"}}, true, false},
		{"scheme case and no spaces", `oauth a="1",b="2"`, []param{{"a", "1"}, {"b", "2"}}, true, false},
		{"unquoted", `OAuth a=1, b="2"`, []param{{"a", "1"}, {"b", "2"}}, true, false},
		{"empty value", `OAuth a=""`, []param{{"a", ""}}, true, false},
		{"scheme only", `OAuth`, nil, true, false},
		{"other scheme", `Basic dXNlcjpwYXNz`, nil, false, false},
		{"bearer", `Bearer abc`, nil, false, false},
		{"unterminated", `OAuth a="1`, nil, true, true},
		{"no value", `OAuth a`, nil, true, true},
		{"bad escape", `OAuth a="%zz"`, nil, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, oauth, err := parseAuthorization(tt.header)
			if oauth != tt.oauth || (err != nil) != tt.err {
				t.Fatalf("oauth=%v err=%v, want oauth=%v err=%v", oauth, err, tt.oauth, tt.err)
			}
			if !tt.err && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGatherSigned(t *testing.T) {
	tests := []struct {
		name        string
		target      string
		header      string
		contentType string
		body        string
		wantParams  string // normalized, "" to skip
		wantProblem string
		attempted   bool
	}{
		{
			name:   "unsigned request attempts nothing",
			target: "/rest/api/2/serverInfo",
		},
		{
			name:       "non-OAuth header is ignored",
			target:     "/x?a=1",
			header:     "Basic dXNlcjpwYXNz",
			wantParams: "a=1",
		},
		{
			name:       "protocol parameters from the query count",
			target:     "/x?oauth_consumer_key=k&oauth_signature=s&q=1",
			wantParams: "oauth_consumer_key=k&q=1",
			attempted:  true,
		},
		{
			name:        "repeated protocol parameter across header and query",
			target:      "/x?oauth_nonce=2",
			header:      `OAuth oauth_nonce="1"`,
			wantProblem: ProblemParameterRejected,
			attempted:   true,
		},
		{
			name:       "repeated ordinary parameters are all signed",
			target:     "/x?a=2&a=1&a=2",
			header:     `OAuth oauth_nonce="1"`,
			wantParams: "a=1&a=2&a=2&oauth_nonce=1",
			attempted:  true,
		},
		{
			name:        "form body with charset is signed",
			target:      "/x",
			header:      `OAuth oauth_nonce="1"`,
			contentType: "application/x-www-form-urlencoded; charset=UTF-8",
			body:        "z=%7E&y=a+b",
			wantParams:  "oauth_nonce=1&y=a%20b&z=~",
			attempted:   true,
		},
		{
			name:        "JSON body is not signed",
			target:      "/x",
			header:      `OAuth oauth_nonce="1"`,
			contentType: "application/json",
			body:        `{"a":1}`,
			wantParams:  "oauth_nonce=1",
			attempted:   true,
		},
		{
			name:        "badly escaped query",
			target:      "/x?a=%zz",
			header:      `OAuth oauth_nonce="1"`,
			wantProblem: ProblemParameterRejected,
			attempted:   true,
		},
		{
			name:        "badly escaped query without OAuth is not an attempt",
			target:      "/x?a=%zz",
			wantProblem: ProblemParameterRejected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:1"+tt.target, strings.NewReader(tt.body))
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			sr, err := gatherSigned(r)
			if err != nil {
				t.Fatal(err)
			}
			if sr.attempted() != tt.attempted {
				t.Errorf("attempted = %v, want %v", sr.attempted(), tt.attempted)
			}
			gotProblem := ""
			if sr.malformed != nil {
				gotProblem = sr.malformed.problem
			}
			if gotProblem != tt.wantProblem {
				t.Errorf("problem %q, want %q", gotProblem, tt.wantProblem)
			}
			if tt.wantParams != "" {
				if got := normalizeParams(sr.params); got != tt.wantParams {
					t.Errorf("params %s, want %s", got, tt.wantParams)
				}
			}
		})
	}
}

func TestNonceCacheIsBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newNonceCache(3)
	if !c.add("a", now, now) || c.add("a", now, now) {
		t.Fatal("a second add of the same key must report a replay")
	}
	// Expired entries go first when the cache is full.
	c = newNonceCache(3)
	c.add("old", now.Add(-10*time.Minute), now)
	c.add("b", now, now)
	c.add("c", now, now)
	c.add("d", now, now)
	if c.len() != 3 || c.add("b", now, now) {
		t.Errorf("after pruning: len %d, b must still be remembered", c.len())
	}
	if !c.add("old", now.Add(-10*time.Minute), now) {
		t.Error("the expired key should have been pruned")
	}
	// With nothing expired, the oldest entry is evicted to stay in bounds.
	if c.len() != 3 {
		t.Errorf("len %d, want 3", c.len())
	}
}
