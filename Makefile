# sevshim top-level build. Two commands matter to a newcomer:
#   make demo   the owner -> provider story end to end on defaults
#   make test   every test (installs what it needs first)
export PATH := /usr/local/go/bin:$(PATH)
BUILD   := $(CURDIR)/build
GO      ?= go
GOTEST_TIMEOUT ?= 60m

.PHONY: all setup shim test test-c test-go demo bench fuzz clean

all: shim

setup:
	scripts/setup.sh

shim:
	$(MAKE) -C shim BUILD=$(BUILD)/shim

test: setup shim test-c test-go

test-c:
	$(MAKE) -C shim BUILD=$(BUILD)/shim test

test-go:
	$(GO) vet ./...
	$(GO) test -timeout $(GOTEST_TIMEOUT) ./...

clean:
	rm -rf $(BUILD)
