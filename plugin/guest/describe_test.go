package guest

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
)

// The describe output is encoded once and reused; each call must still
// return the full description, in a slice of its own that the caller may
// change without changing the next call's answer.
func TestDescribeOutputIsStableAndUnshared(t *testing.T) {
	for i := range 3 {
		out, ok := Dispatch(abi.ExportDescribe, nil, nil)
		if !ok {
			t.Fatalf("call %d: describe failed: %s", i, out)
		}
		var d abi.Description
		if err := json.Unmarshal(out, &d); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if !reflect.DeepEqual(d, Describe()) {
			t.Fatalf("call %d: got %+v, want %+v", i, d, Describe())
		}
		for j := range out {
			out[j] = 'x' // a caller scribbling on its output
		}
	}
}
