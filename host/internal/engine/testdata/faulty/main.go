//go:build wasip1

// Command faulty is a test plugin that misbehaves on request, to prove that
// the engine survives a guest that panics, loops, hoards memory, returns
// garbage or lies about its result. Its input, or the "fault" member of a
// JSON input, names the fault.
package main

import (
	"bytes"
	"encoding/json"
	"unsafe"

	"github.com/extism/go-pdk"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/guest"
)

func main() {}

//go:wasmexport describe
func describe() int32 {
	out, _ := guest.Dispatch(abi.ExportDescribe, nil, nil)
	pdk.Output(out)
	return 0
}

//go:wasmimport extism:host/user jirasync_groups_linked
func hostGroupsLinked(uint64) uint64

var hoard [][]byte

//go:wasmexport handle_issue_updated
func handle() int32 {
	mode := string(pdk.Input())
	var req struct{ Fault string }
	if json.Unmarshal(pdk.Input(), &req) == nil {
		mode = req.Fault
	}
	switch mode {
	case "panic":
		panic("faulty plugin panics")
	case "loop":
		for {
		}
	case "memory":
		for {
			hoard = append(hoard, make([]byte, 8<<20))
		}
	case "bad_output":
		pdk.OutputString("this is not JSON")
		return 0
	case "rc_no_error":
		return 3
	case "error":
		pdk.SetErrorString(`{"code":"unavailable","message":"jira is down"}`)
		return 1
	case "internal":
		pdk.SetErrorString(`{"code":"internal","message":"a bug"}`)
		return 1
	case "copy_ranges":
		pdk.OutputJSON(copyRanges())
		return 0
	case "host_garbage":
		// A malformed request to a host function must come back as an
		// error envelope, not a trap.
		in := pdk.AllocateString("{not json")
		out := pdk.FindMemory(hostGroupsLinked(in.Offset()))
		pdk.Output(out.ReadBytes())
		return 0
	}
	pdk.OutputString(`{"summary":{"outcome":"ignored","reason":"no_changelog","assigned":0,"unassigned":0,"unchanged":0,"skipped":0,"groups":[]}}`)
	return 0
}

//go:wasmimport extism:host/user jirasync_kernel_load
func kernelLoad(kernelOffset, guestPtr, length uint64) uint64

//go:wasmimport extism:host/user jirasync_kernel_store
func kernelStore(kernelOffset, guestPtr, length uint64) uint64

func address(p *byte) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

// copyRanges calls the memory functions (ABI 1.5) with good ranges and
// with ranges outside either memory, and reports each answer, whether the
// good ones copied, and whether the refused ones left both sides as they
// were.
func copyRanges() map[string]any {
	src := []byte("bulk copy probe")
	n := uint64(len(src))
	blk := pdk.Allocate(len(src))
	defer blk.Free()
	dst := make([]byte, len(src))
	r := map[string]any{
		"store": kernelStore(blk.Offset(), address(&src[0]), n),
		"load":  kernelLoad(blk.Offset(), address(&dst[0]), n),
	}
	r["copied"] = bytes.Equal(dst, src)
	clear(dst)
	for name, rc := range map[string]func() uint64{
		"load_kernel_past_end":     func() uint64 { return kernelLoad(0xFFFF_FF00, address(&dst[0]), 0x200) },
		"load_kernel_over_32_bits": func() uint64 { return kernelLoad(1<<32+blk.Offset(), address(&dst[0]), n) },
		"load_guest_past_end":      func() uint64 { return kernelLoad(blk.Offset(), 0xFFFF_FFF0, 0x20) },
		"load_guest_over_32_bits":  func() uint64 { return kernelLoad(blk.Offset(), 1<<32+address(&dst[0]), n) },
		"load_length_over_32_bits": func() uint64 { return kernelLoad(blk.Offset(), address(&dst[0]), 1<<32|n) },
		"store_kernel_past_end":    func() uint64 { return kernelStore(0xFFFF_FF00, address(&dst[0]), 0x200) },
		"store_guest_wraps":        func() uint64 { return kernelStore(blk.Offset(), 0xFFFF_FFFF, 2) },
	} {
		r[name] = rc()
	}
	r["untouched"] = bytes.Count(dst, []byte{0}) == len(dst) && bytes.Equal(blk.ReadBytes(), src)
	return r
}
