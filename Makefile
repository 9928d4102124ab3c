# sevshim top-level build. Two commands matter to a newcomer:
#   make demo   the owner -> provider story end to end on defaults
#   make test   every test (installs what it needs first)
export PATH := /usr/local/go/bin:$(PATH)
BUILD   := $(CURDIR)/build
GO      ?= go
GOTEST_TIMEOUT ?= 60m
FUZZ_SECONDS ?= 60

.PHONY: all setup shim images tools test test-c test-go demo bench fuzz clean

all: shim images tools

setup:
	scripts/setup.sh

# the firmware template (build/shim/shim.fd) and the host-side C tools
shim:
	$(MAKE) -C shim BUILD=$(BUILD)/shim

# demo keys, signed BIOS bundles v5/v6 and a demo shim image (build/images)
images: shim
	$(MAKE) -C images

# the three CLIs into build/bin
tools:
	$(GO) build -o $(BUILD)/bin/ ./builder ./verifier ./hostctl

test: setup shim images test-c test-go

# C unit tests, libFuzzer smoke run, reproducibility check of the firmware
test-c:
	$(MAKE) -C shim BUILD=$(BUILD)/shim test

test-go:
	$(GO) vet ./...
	$(GO) test -timeout $(GOTEST_TIMEOUT) ./...

demo: setup shim images tools
	scripts/demo.sh

# performance figures (printed, never asserted); build/bench/timeline.svg pictures export + receive
bench: setup shim images
	$(MAKE) -C shim BUILD=$(BUILD)/shim size
	$(GO) run ./cmd/shimbench
	$(GO) test -run '^$$' -bench . -benchtime 3x ./sev/ ./psp/ ./migrate/
	SEVSHIM_BENCH_SVG=$(BUILD)/bench/timeline.svg $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 20m ./tests/flow/

# longer fuzzing runs of every parser (C libFuzzer + go test -fuzz)
fuzz: shim
	$(MAKE) -C shim BUILD=$(BUILD)/shim fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)
	scripts/fuzz-go.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD)
