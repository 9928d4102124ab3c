# sevshim top-level build. Two commands matter to a newcomer:
#   make demo   the owner -> provider story end to end on defaults
#   make test   every test (installs what it needs first)
export PATH := /usr/local/go/bin:$(PATH)
BUILD   := $(CURDIR)/build
GO      ?= go
GOTEST_TIMEOUT ?= 60m
FUZZ_SECONDS ?= 60
PREFIX  ?= /usr/local
DESTDIR ?=
# the commit goes into --version even where the Go toolchain records no VCS data
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -modified)
LDFLAGS := -X github.com/sevshim/sevshim/pkg/cli/version.commit=$(COMMIT)
export SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: all setup shim images guest tools firmware man install test test-c test-go demo bench fuzz clean

all: shim images tools

setup:
	scripts/setup.sh

# the firmware templates (build/shim/shim.fd for ovmf-4m, shim-NAME.fd per other layout) and
# the host-side C tools
shim:
	$(MAKE) -C shim BUILD=$(BUILD)/shim

# demo keys, signed BIOS bundles v5/v6 and a demo shim image (build/images), and the guest OS
images: shim guest
	$(MAKE) -C images

# the guest OS after the chain (build/guest): Debian's cloud kernel (vmlinuz, resolved through
# its meta-package) and the initramfs whose /init is the static guest agent
GUEST := $(BUILD)/guest
guest:
	scripts/guest-kernel.sh $(GUEST)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -buildid=' -o $(GUEST)/agent ./guest/agent
	$(GO) run ./guest/mkinitramfs -agent $(GUEST)/agent -kernel-root $(GUEST)/kernel -out $(GUEST)/initramfs.cpio
	@ls -l $(GUEST)/vmlinuz $(GUEST)/agent $(GUEST)/initramfs.cpio | awk '{print "guest:", $$5, $$9}'

# the three CLIs into build/bin
tools:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BUILD)/bin/ ./builder ./verifier ./hostctl

# refresh the shim templates embedded in the tools (pkg/firmware/shim*.fd.gz, one per layout:
# shim.fd for ovmf-4m, shim-NAME.fd for the others, and shim.fd.sha256 for --version) from a
# fresh build; a test
# (go test ./pkg/firmware/) fails while they differ
firmware: shim
	for f in $(notdir $(wildcard $(BUILD)/shim/shim*.fd)); do \
		gzip -9 -n -c $(BUILD)/shim/$$f > pkg/firmware/$$f.gz.tmp && mv pkg/firmware/$$f.gz.tmp pkg/firmware/$$f.gz || exit 1; \
	done
	sha256sum $(BUILD)/shim/shim.fd | cut -d' ' -f1 > pkg/firmware/shim.fd.sha256

# man pages of the three tools, generated from their --help (build/man/*.1)
man:
	rm -rf $(BUILD)/man
	$(GO) run ./scripts/mangen -out $(BUILD)/man

# the tools into $(DESTDIR)$(PREFIX)/bin, their man pages into .../share/man/man1
install: tools man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BUILD)/bin/builder $(BUILD)/bin/verifier $(BUILD)/bin/hostctl $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/

test: setup shim images test-c test-go

# C unit tests, libFuzzer smoke run, reproducibility check of the firmware
test-c:
	$(MAKE) -C shim BUILD=$(BUILD)/shim test

test-go:
	$(GO) vet ./...
	$(GO) test -timeout $(GOTEST_TIMEOUT) ./...

demo: setup shim images tools
	scripts/demo.sh

# performance figures (printed, never asserted; not part of make test): every row of the
# performance table as min / median / max over BENCH_RUNS paired runs, with its goal
# (tests/bench); BENCH_JSON=FILE also writes every sample (go run ./tests/bench/readme -in
# FILE regenerates README.md's table); build/bench/timeline.svg pictures export + receive
BENCH_RUNS ?= 9
BENCH_JSON ?=
bench: setup shim images tools
	@start=$$(date +%s); \
	$(GO) run ./tests/bench -n $(BENCH_RUNS) -svg $(BUILD)/bench/timeline.svg $(if $(BENCH_JSON),-json $(BENCH_JSON)) || exit 1; \
	echo "make bench: $$(( $$(date +%s) - start )) s"

# longer fuzzing runs of every parser (C libFuzzer + go test -fuzz)
fuzz: shim
	$(MAKE) -C shim BUILD=$(BUILD)/shim fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)
	scripts/fuzz-go.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD)
