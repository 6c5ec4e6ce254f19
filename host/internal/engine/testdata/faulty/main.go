//go:build wasip1

// Command faulty is a test plugin that misbehaves on request, to prove that
// the engine survives a guest that panics, loops, hoards memory, returns
// garbage or lies about its result. Its input, or the "fault" member of a
// JSON input, names the fault.
package main

import (
	"bytes"
	"encoding/json"
	"time"
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
	case "direct_ranges":
		pdk.OutputJSON(directRanges())
		return 0
	case "direct_keep":
		// An answer kept and never taken: the next export call must not
		// find it.
		buf := make([]byte, 1)
		rc := directCall(abi.FuncStateGet, `{"key":"big"}`, buf)
		pdk.OutputJSON(map[string]any{"kept": rc})
		return 0
	case "host_call_cost":
		pdk.OutputJSON(hostCallCost(1000))
		return 0
	case "direct_take":
		buf := make([]byte, 1<<16)
		pdk.OutputJSON(map[string]any{"taken": int64(hostCallAnswer(address(&buf[0]), uint64(len(buf))))})
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

//go:wasmimport extism:host/user jirasync_call
func hostCall(namePtr, nameLen, reqPtr, reqLen, outPtr, outCap uint64) uint64

//go:wasmimport extism:host/user jirasync_call_answer
func hostCallAnswer(outPtr, outCap uint64) uint64

// directCall calls jirasync_call (ABI 1.6) with name and request from this
// module's memory and buf for the answer.
func directCall(name, req string, buf []byte) int64 {
	nb, rb := []byte(name), []byte(req)
	return int64(hostCall(address(&nb[0]), uint64(len(nb)), address(&rb[0]), uint64(len(rb)), address(&buf[0]), uint64(len(buf))))
}

// directRanges calls the direct-call functions (ABI 1.6) with good
// arguments and with each range outside this module's memory or wider than
// 32 bits, an unknown name, an answer larger than the buffer, and
// jirasync_call_answer without a kept answer, and reports each result and
// what reached the buffers. The host's counts tell how often each host
// function ran.
func directRanges() map[string]any {
	name, req := []byte(abi.FuncStateGet), []byte(`{"key":"small"}`)
	buf := make([]byte, 256)
	r := map[string]any{}
	n := directCall(abi.FuncStateGet, `{"key":"small"}`, buf)
	r["small"], r["small_answer"] = n, string(buf[:max(n, 0)])
	clear(buf)
	bad := map[string]func() uint64{
		"name_past_end": func() uint64 {
			return hostCall(0xFFFF_FF00, 0x200, address(&req[0]), uint64(len(req)), address(&buf[0]), 256)
		},
		"name_over_32_bits": func() uint64 {
			return hostCall(1<<32+address(&name[0]), uint64(len(name)), address(&req[0]), uint64(len(req)), address(&buf[0]), 256)
		},
		"request_past_end": func() uint64 {
			return hostCall(address(&name[0]), uint64(len(name)), 0xFFFF_FFF0, 0x20, address(&buf[0]), 256)
		},
		"request_len_over_32_bits": func() uint64 {
			return hostCall(address(&name[0]), uint64(len(name)), address(&req[0]), 1<<32|uint64(len(req)), address(&buf[0]), 256)
		},
		"out_past_end": func() uint64 {
			return hostCall(address(&name[0]), uint64(len(name)), address(&req[0]), uint64(len(req)), 0xFFFF_FFF0, 0x20)
		},
		"out_cap_over_32_bits": func() uint64 {
			return hostCall(address(&name[0]), uint64(len(name)), address(&req[0]), uint64(len(req)), address(&buf[0]), 1<<32|256)
		},
		"answer_none_kept": func() uint64 { return hostCallAnswer(address(&buf[0]), 256) },
	}
	for k, f := range bad {
		r[k] = int64(f())
	}
	r["untouched"] = bytes.Count(buf, []byte{0}) == len(buf)
	n = directCall("jirasync_shell_exec", `{}`, buf)
	r["unknown"], r["unknown_answer"] = n, string(buf[:max(n, 0)])
	// A host function that panics: an error envelope, not a trap.
	n = directCall(abi.FuncStateGet, `{"key":"panic"}`, buf)
	r["panic_answer"] = string(buf[:max(n, 0)])

	// An answer larger than the buffer: kept, and nothing written; a
	// buffer still too small or out of range leaves it kept; the right one
	// takes it, once.
	small := make([]byte, 16)
	n = directCall(abi.FuncStateGet, `{"key":"big"}`, small)
	r["big"], r["big_untouched"] = n, bytes.Count(small, []byte{0}) == len(small)
	r["big_answer_too_small"] = int64(hostCallAnswer(address(&small[0]), uint64(len(small))))
	r["big_answer_out_of_range"] = int64(hostCallAnswer(0xFFFF_FFF0, 0x20))
	big := make([]byte, max(n, 0))
	r["big_answer"] = int64(hostCallAnswer(address(&big[0]), uint64(len(big))))
	r["big_answer_text"] = string(big)
	r["big_answer_again"] = int64(hostCallAnswer(address(&big[0]), uint64(len(big))))

	// A kept answer is dropped by the next jirasync_call, even one refused.
	directCall(abi.FuncStateGet, `{"key":"big"}`, small)
	hostCall(0xFFFF_FF00, 0x200, 0, 0, 0, 0)
	r["dropped_by_next_call"] = int64(hostCallAnswer(address(&big[0]), uint64(len(big))))
	return r
}

// hostCallCost times n calls of jirasync_groups_linked made directly (ABI
// 1.6) and n made the classic way (a kernel block each way, copied with
// the memory functions of 1.5, as the plugin did before direct calls),
// and reports the mean nanoseconds per call of each: what one host call
// costs the sandbox, the host function's own work aside.
func hostCallCost(n int) map[string]int64 {
	req := `{"issue_key":"APP-1","organizations":["acme"]}`
	buf := make([]byte, 4096)
	start := time.Now()
	for range n {
		if directCall(abi.FuncGroupsLinked, req, buf) <= 0 {
			return map[string]int64{"failed": 1}
		}
	}
	direct := time.Since(start)
	rb := []byte(req)
	start = time.Now()
	for range n {
		in := pdk.Allocate(len(rb))
		kernelStore(in.Offset(), address(&rb[0]), uint64(len(rb)))
		out := pdk.FindMemory(hostGroupsLinked(in.Offset()))
		kernelLoad(out.Offset(), address(&buf[0]), out.Length())
		out.Free()
		in.Free()
	}
	classic := time.Since(start)
	return map[string]int64{"direct_ns": direct.Nanoseconds() / int64(n), "classic_ns": classic.Nanoseconds() / int64(n)}
}
