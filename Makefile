# msrtrain build. `make` chooses a libtorch (see cgo/find_libtorch.sh for the
# order), compiles the C++ shim once into build/libmsrshim.a, and builds the
# Go program against it.

SHELL := /bin/bash
BUILD := build
BIN := bin/msrtrain
GO ?= go
# The lowest Go that builds and tests msrtrain: go.mod's go line, read from there.
GO_MIN := $(shell sed -n 's/^go //p' go.mod)
TEST_FLAGS ?= -count=1 -timeout 25m

TORCH_MK := $(BUILD)/torch.mk
SHIM_SRC := $(wildcard cgo/shim/*.cpp)
SHIM_HDR := $(wildcard cgo/shim/*.h)
SHIM_OBJ := $(patsubst cgo/shim/%.cpp,$(BUILD)/shim/%.o,$(SHIM_SRC))
SHIM_LIB := $(BUILD)/libmsrshim.a

.DEFAULT_GOAL := build
.PHONY: setup build test bench bench-serve run vet info clean gpu-bundle test-gpu gpu-check

# Regenerated when the finder or LIBTORCH changes; skipped for setup and clean.
ifeq ($(filter setup clean gpu-bundle,$(MAKECMDGOALS)),)
$(TORCH_MK): cgo/find_libtorch.sh $(BUILD)/.libtorch-env
	@mkdir -p $(BUILD)
	@cgo/find_libtorch.sh $@.tmp && mv $@.tmp $@
-include $(TORCH_MK)
endif

# Records LIBTORCH so that pointing it elsewhere rebuilds everything.
$(BUILD)/.libtorch-env: FORCE
	@mkdir -p $(BUILD)
	@echo "$(LIBTORCH)" | cmp -s - $@ || echo "$(LIBTORCH)" > $@
FORCE:

SHIM_HASH = $(shell cat $(SHIM_SRC) $(SHIM_HDR) $(TORCH_MK) 2>/dev/null | sha1sum | cut -c1-16)
# The shim's hash in CGO_CPPFLAGS makes Go's build cache relink when the
# shim changes, since Go does not hash the static library itself.
CGO_ENV = CGO_ENABLED=1 \
	CGO_CPPFLAGS="-DMSR_SHIM_HASH=$(SHIM_HASH)" \
	CGO_LDFLAGS="-L$(abspath $(BUILD)) -lmsrshim $(TORCH_LDFLAGS) -lstdc++ -lm -ldl"

$(BUILD)/shim/%.o: cgo/shim/%.cpp $(SHIM_HDR) $(TORCH_MK)
	@mkdir -p $(dir $@)
	$(CXX) $(SHIM_CXXFLAGS) -c $< -o $@

$(SHIM_LIB): $(SHIM_OBJ)
	@rm -f $@
	ar rcs $@ $^

# build/env.sh lets a shell run `go test ./...` directly: `. build/env.sh`.
$(BUILD)/env.sh: $(TORCH_MK) $(SHIM_SRC) $(SHIM_HDR)
	@echo 'export $(CGO_ENV)' > $@

info: $(TORCH_MK)
	@echo "libtorch: $(TORCH_SOURCE)"
	@echo "  version $(TORCH_VERSION), CUDA libraries: $(TORCH_CUDA), c10d backends: $(TORCH_DIST), libs in $(TORCH_LIBDIR)"

build: info $(SHIM_LIB) $(BUILD)/env.sh
	$(CGO_ENV) $(GO) build -o $(BIN) ./cmd/msrtrain

# ./train/ first: its tests take the longest, so it starts while the other
# packages share the second core instead of running alone at the end.
test: info $(SHIM_LIB) $(BUILD)/env.sh
	$(CGO_ENV) $(GO) vet ./...
	$(CGO_ENV) $(GO) test $(TEST_FLAGS) ./train/ ./...

# The CUDA tests (they skip without a GPU) and the placement tests on meta.
test-gpu: info $(SHIM_LIB) $(BUILD)/env.sh
	@$(CGO_ENV) $(GO) run ./cmd/msrtrain info | grep -E '^(libtorch|CUDA)'
	$(CGO_ENV) $(GO) test $(TEST_FLAGS) -v -run 'CUDA|Placement' ./cgo/... ./model/ ./train/

# On a GPU machine: build against its libtorch (LIBTORCH=, a CUDA PyTorch's
# libraries through PYTHON=, see cgo/find_libtorch.sh), run the CUDA tests,
# then the GPU throughput benchmark.
gpu-check: build test-gpu
	$(CGO_ENV) $(GO) test -run '^$$' -bench GPUThroughput -benchtime 1x -timeout 60m ./model/

# Each benchmark that compares against a baseline (C++ loop, PyTorch) runs
# both in the same process and prints the ratio.
bench: info $(SHIM_LIB)
	$(CGO_ENV) $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./cgo/... ./model/ ./train/
	$(CGO_ENV) $(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m ./data/...

# Load test of msrtrain serve on loopback (train/serve/bench/loadtest.py): a
# model trained on 20k synthetic rows, 1 and 100 rows per request at 1, 8 and
# 64 clients. With EXPORT=DIR (msrtrain export of SERVE_BENCH/run) the same
# model behind a FastAPI service runs beside it, with the ratios.
SERVE_BENCH ?= runs/serve-bench
bench-serve: build
	@mkdir -p $(SERVE_BENCH)
	@test -f $(SERVE_BENCH)/rows.csv || $(BIN) data synth --output $(SERVE_BENCH)/rows.csv --set data.synthetic.rows=20000
	@test -d $(SERVE_BENCH)/run/checkpoints || $(BIN) --out $(SERVE_BENCH)/run -c $(SERVE_BENCH)/rows.csv.yaml --threads 1 train --set train.epochs=1
	/usr/bin/python3 train/serve/bench/loadtest.py --checkpoint $(SERVE_BENCH)/run --data $(SERVE_BENCH)/rows.csv \
		--msrtrain $(BIN) --threads 1 $(if $(EXPORT),--export $(EXPORT))

# The main job on the embedded data: LLM4MSR on STAR against the bare backbone,
# into a new run directory each time.
RUN_OUT ?= runs/$(shell date +%Y%m%d-%H%M%S)
run: build
	$(BIN) --out $(RUN_OUT) train --baseline

vet: info $(SHIM_LIB)
	$(CGO_ENV) $(GO) vet ./...

# For GPU machines without Go: the Go side compiled here as a C archive, the
# shim's sources and cgo/bundle/files/link.sh, which compiles the shim against the
# target's libtorch and links ./msrtrain with g++ alone. Needs no libtorch here.
BUNDLE_NAME := msrtrain-gpu-bundle
BUNDLE_DIR := $(BUILD)/bundle/$(BUNDLE_NAME)
gpu-bundle:
	rm -rf $(BUILD)/bundle && mkdir -p $(BUNDLE_DIR)/lib $(BUNDLE_DIR)/cgo/shim $(BUNDLE_DIR)/third_party
	CGO_ENABLED=1 $(GO) build -buildmode=c-archive -tags msrbundle -trimpath -o $(BUNDLE_DIR)/lib/libmsrtrain.a ./cmd/msrtrain
	rm -f $(BUNDLE_DIR)/lib/libmsrtrain.h
	cp $(SHIM_SRC) $(SHIM_HDR) $(BUNDLE_DIR)/cgo/shim/
	cp cgo/find_libtorch.sh $(BUNDLE_DIR)/cgo/
	cp cgo/bundle/files/main.c cgo/bundle/files/link.sh cgo/bundle/files/README.md $(BUNDLE_DIR)/
	tar -C $(BUILD)/bundle -czf $(BUILD)/$(BUNDLE_NAME).tar.gz $(BUNDLE_NAME)
	@echo "wrote $(BUILD)/$(BUNDLE_NAME).tar.gz: unpack it on the GPU machine and run ./link.sh in $(BUNDLE_NAME)/"

# Installs what a fresh Debian/Ubuntu machine needs. With LIBTORCH set, no
# libtorch comes from apt; python3-torch is only the benchmarks' baseline.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := build-essential libopenblas0-pthread python3-torch \
	wrk python3-fastapi python3-uvicorn
ifeq ($(LIBTORCH),)
APT_PACKAGES += libtorch-dev libgloo-dev
endif
# The data tests write Parquet with DuckDB (npm's @duckdb/node-api, its Linux
# binary inside the package), installed into third_party/duckdb. node and npm
# come from apt unless the machine has them (NodeSource's nodejs includes npm
# and conflicts with Debian's npm package).
DUCKDB_NODE_API := 1.5.6-r.1
DUCKDB_DIR := third_party/duckdb
setup:
	@command -v $(GO) >/dev/null || { echo "Go $(GO_MIN)+ is needed (go.mod): https://go.dev/dl/"; exit 1; }
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES)
	command -v npm >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
	npm install --prefix $(DUCKDB_DIR) --no-audit --no-fund --save-exact @duckdb/node-api@$(DUCKDB_NODE_API)
	$(GO) mod download

clean:
	rm -rf $(BUILD) bin
