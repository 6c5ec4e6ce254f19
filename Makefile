# jirasync: see README.md. Every target does its own set-up.

GO          ?= go
BUILD       := build
PLUGIN      := $(BUILD)/jirasync.wasm
HOST        := $(BUILD)/jirasync
# A count, not a duration: Go 1.26's fuzz coordinator can fail a target
# with a bare "context deadline exceeded" when a -fuzztime duration runs
# out (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline.
# 60000 inputs is about 5 s of FuzzParse here.
FUZZTIME    ?= 60000x
# Fuzz targets: package and function, run for FUZZTIME each by make test,
# or for the count after a second colon. FuzzInspectAgrees runs every input
# through the wasm plugin (about 1000 a second, after each worker's ~15 s
# start compiling the sandbox), so it gets fewer.
# Minimising a large interesting input (payload seeds are ~10 KB) can stall
# the fuzzer for its whole budget, hence a short -fuzzminimizetime.
FUZZ        := ./plugin/webhook:FuzzParse ./plugin/internal/jsonscan:FuzzSkip ./plugin/internal/jsonwrite:FuzzString ./host/webhooktoken:FuzzPeek ./host/app:FuzzInspectAgrees:3000x
# The PostgreSQL suites (storage conformance, scenarios, replica crash test,
# replica benchmark) run against the server this names, a postgres:// URL;
# `make postgres` starts a throwaway one. Unset, they are skipped, and said so.
PG          := $(JIRASYNC_TEST_POSTGRES)
PGDIR       ?= /tmp/jirasync-postgres

# The Node host (docs/CONFORMANCE.md): run when node and npm are on PATH
# (.ci/run installs them), skipped and said so otherwise.
NODEHOST    := testharness/nodehost
HAVE_NODE   := $(shell command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && echo yes)

.PHONY: all build plugin host run example test unit scenarios conformance node-deps bench-node bench-guest crash fuzz bench lint clean postgres postgres-stop pg-status

all: build

build: plugin host

# The plugin: standard Go for wasip1, as a reactor (c-shared) so that
# Extism calls _initialize once and then our exports.
plugin:
	@mkdir -p $(BUILD)
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -trimpath -ldflags='-s -w' -o $(PLUGIN) ./plugin/cmd/jirasync-plugin

host:
	@mkdir -p $(BUILD)
	$(GO) build -trimpath -o $(HOST) ./host/cmd/jirasync

# Serves on 127.0.0.1:8080 with demo data in ./data (SQLite).
run: build
	$(HOST) serve -demo

# The embedding example (host/examples/tracker): a tiny issue tracker with
# jirasync mounted on its own mux, on 127.0.0.1:8081, data in ./data/tracker.
example: plugin
	$(GO) run ./host/examples/tracker -seed -plugin $(PLUGIN)

test: pg-status lint plugin unit scenarios conformance crash fuzz
	@$(MAKE) --no-print-directory pg-status

pg-status:
ifeq ($(PG),)
	@echo "PostgreSQL suites SKIPPED: JIRASYNC_TEST_POSTGRES is not set (see 'make postgres')"
else
	@echo "PostgreSQL suites run against $$(echo '$(PG)' | sed -E 's#//([^:@/]*):[^@/]*@#//\1:***@#')"
endif

# -short leaves the crash test to its own target, where it runs without
# the race detector's slowdown and prints its counts.
unit: plugin
	JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) $(GO) test -race -short -count=1 ./...

crash: plugin
	JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) $(GO) test -count=1 -run '^(TestCrashSafety|TestCrashSafetyHTTPPlatform|TestReplicasCrashSafety)$$' -v ./host/cmd/jirasync

# Each scenario on the built-in platform, then on the simulated platform
# over HTTP (docs/PLATFORM.md), then on PostgreSQL.
scenarios: plugin
	JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) $(GO) run ./testharness/cmd/scenario fixtures/scenarios
	JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) $(GO) run ./testharness/cmd/scenario -platform http fixtures/scenarios
ifneq ($(PG),)
	JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) $(GO) run ./testharness/cmd/scenario -postgres '$(PG)' fixtures/scenarios
endif

# The conformance kit (docs/CONFORMANCE.md): the plugin-level scenarios
# through the Go host's adapter, then through the Node host's.
conformance: plugin node-deps
	$(GO) build -o $(BUILD)/conformance-adapter ./host/internal/cmd/conformance-adapter
	$(GO) run ./testharness/cmd/scenario -plugin $(abspath $(PLUGIN)) -adapter "$(abspath $(BUILD))/conformance-adapter" fixtures/scenarios
ifeq ($(HAVE_NODE),yes)
	$(GO) run ./testharness/cmd/scenario -plugin $(abspath $(PLUGIN)) -adapter "node --no-warnings $(abspath $(NODEHOST))/adapter.js" fixtures/scenarios
else
	@echo "Node host SKIPPED: node and npm are not installed (.ci/run installs them)"
endif

# Times per call in the Node host beside the Go host's (BENCHMARKS.md):
# both adapters loaded side by side, taking turns call by call.
bench-node: plugin node-deps
	$(GO) build -o $(BUILD)/conformance-adapter ./host/internal/cmd/conformance-adapter
	$(GO) run ./testharness/cmd/conformance-bench -plugin $(abspath $(PLUGIN)) -n 200 \
		-adapter go="$(abspath $(BUILD))/conformance-adapter" \
		-adapter node="node --no-warnings $(abspath $(NODEHOST))/adapter.js"

# The Node host's dependencies, exactly as package-lock.json pins them.
node-deps: plugin
ifeq ($(HAVE_NODE),yes)
	@node --version
	cd $(NODEHOST) && npm ci --no-audit --no-fund --loglevel=error
	cd $(NODEHOST) && JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) npm test --silent
endif

fuzz: plugin
	@for t in $(FUZZ); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$(FUZZTIME); \
		case $$rest in *:*) n=$${rest#*:};; esac; \
		echo "fuzz $$pkg $$fn for $$n"; \
		JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $$n -fuzzminimizetime 1s $$pkg || exit 1; \
	done

# Each figure beside its comparator, measured in the same run (wasm and
# native engines alternate; cold and warm compiles alternate).
bench: plugin
	JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) $(GO) test -run '^$$' -bench . -benchtime 30x ./host/internal/engine/
	JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) $(GO) test -run '^$$' -bench '^BenchmarkEndToEnd$$' -benchtime 1x ./host/cmd/jirasync
	JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) $(GO) test -run '^$$' -bench '^BenchmarkEventsEndToEnd$$' -benchtime 1x ./host/cmd/jirasync
	JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) $(GO) test -run '^$$' -bench Platforms -benchtime 1x ./host/cmd/jirasync
	JIRASYNC_PLUGIN=$(abspath $(PLUGIN)) $(GO) test -run '^$$' -bench Replicas -benchtime 1x ./host/cmd/jirasync

# The guest's own code, natively and then as wasm under the wazero command
# (pinned to the version the host links; installed into build/tools): what
# the plugin's logic costs inside the sandbox without the cost of crossing
# into it. Go runs wasip1 test binaries through go_wasip1_wasm_exec.
bench-guest:
	GOBIN=$(abspath $(BUILD))/tools $(GO) install github.com/tetratelabs/wazero/cmd/wazero@v1.12.0
	$(GO) test -run '^$$' -bench . -benchtime 2000x ./plugin/webhook/ ./plugin/internal/jsonscan/ ./plugin/guest/
	PATH="$(abspath $(BUILD))/tools:$$PATH:$$($(GO) env GOROOT)/lib/wasm" GOWASIRUNTIME=wazero GOOS=wasip1 GOARCH=wasm \
		$(GO) test -run '^$$' -bench . -benchtime 2000x ./plugin/webhook/ ./plugin/internal/jsonscan/ ./plugin/guest/

# A throwaway PostgreSQL on loopback for the suites above (Debian's package,
# installed if missing). Prints the line to paste into your shell.
postgres:
	@dsn=$$(.ci/postgres start $(PGDIR)) && echo "export JIRASYNC_TEST_POSTGRES='$$dsn'"

postgres-stop:
	.ci/postgres stop $(PGDIR)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./plugin/...
	@# go.mod and go.sum must say exactly what the code imports (a direct
	@# import marked // indirect, or a stale sum, fails here).
	$(GO) mod tidy -diff

clean:
	rm -rf $(BUILD)
