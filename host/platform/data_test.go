package platform

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// collect is a Sink that keeps what it is given.
type collect struct{ got []string }

func (c *collect) Organization(at string, o Organization) error {
	c.got = append(c.got, at+"="+o.ID+":"+o.Name)
	return nil
}
func (c *collect) Project(at string, p Project) error { c.got = append(c.got, at+"="+p.ID); return nil }
func (c *collect) User(at string, u User) error       { c.got = append(c.got, at+"="+u.ID); return nil }
func (c *collect) Group(at string, g Group) error     { c.got = append(c.got, at+"="+g.ID); return nil }
func (c *collect) Link(at string, l Link) error       { c.got = append(c.got, at+"="+l.IssueKey); return nil }
func (c *collect) Flush() error                       { c.got = append(c.got, "flush"); return nil }

// TestDecodeStreams: objects arrive one at a time, located, with a flush
// per section; multi-byte UTF-8 cut across reads is whole, a bad byte is
// refused wherever the reads cut.
func TestDecodeStreams(t *testing.T) {
	file := `{"organizations": [{"id": "ö-1", "name": "Zürich 東京"}, {"id": "b"}], "links": null,
		"users": [{"id": "u"}], "links2": []}`
	var c collect
	err := Decode(iotest.OneByteReader(strings.NewReader(file)), &c)
	if err == nil || err.Error() != "links2: unknown key (want organizations, projects, users, groups, links)" {
		t.Fatalf("Decode: %v", err)
	}
	want := "organizations[0]=ö-1:Zürich 東京 organizations[1]=b: flush users[0]=u flush"
	if got := strings.Join(c.got, " "); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	for _, bad := range []string{"\xff", "Z\xc3", "\xe6\x9d", "\xed\xa0\x80"} { // stray, cut, cut, surrogate
		for name, r := range map[string]func(io.Reader) io.Reader{
			"in one read":   func(r io.Reader) io.Reader { return r },
			"a byte a read": iotest.OneByteReader,
			"half a read":   iotest.HalfReader,
		} {
			err := Decode(r(strings.NewReader(`{"organizations": [{"id": "a", "name": "`+bad+`"}]}`)), &collect{})
			if err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Errorf("%s %q: %v, want invalid UTF-8", name, bad, err)
			}
		}
	}
}

func TestApplyKeyAndFields(t *testing.T) {
	if k := (ApplyKey{Installation: "jira-1", Delivery: 42, Round: 3}).String(); k != "jira-1/42/3" {
		t.Errorf("ApplyKey = %s", k)
	}
	for _, tc := range []struct{ at, field, want string }{
		{"users[3]", "emails[0].email", "users[3].emails[0].email"},
		{"users[3]", "[1]", "users[3][1]"},
		{"", "name", "name"},
		{"groups[0]", "", "groups[0]"},
	} {
		if got := Field(tc.at, tc.field); got != tc.want {
			t.Errorf("Field(%q, %q) = %q, want %q", tc.at, tc.field, got, tc.want)
		}
	}
}
