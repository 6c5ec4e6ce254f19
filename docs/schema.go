// Package docs holds the machine-readable form of docs/ABI.md, the JSON
// Schema abi.schema.json, for tests to validate what crosses the plugin
// boundary. Only tests import it: the product does not validate at run
// time (the Go types of plugin/abi already shape every message).
package docs

import _ "embed"

// ABISchema is abi.schema.json: JSON Schema draft 2020-12, one $defs entry
// per message.
//
//go:embed abi.schema.json
var ABISchema []byte
