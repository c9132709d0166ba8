# smartcar-webhook-receiver. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
LAMBDAS := $(notdir $(wildcard lambdas/*))
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0
BUILD_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: help build test lint bench deps moto clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## Build every Lambda to bin/<name>/bootstrap (linux/arm64)
	@for fn in $(LAMBDAS); do \
	  echo "build bin/$$fn/bootstrap"; \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o bin/$$fn/bootstrap ./lambdas/$$fn || exit 1; \
	done

deps: ## Download Go modules
	$(GO) mod download

moto: ## Install the moto AWS emulator where it is missing
	@scripts/ensure-moto.sh

test: deps moto ## Unit and integration tests (against moto), fuzz seed corpora, vet
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

lint: ## gofmt, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench: ## Benchmarks (ns/op, B/op, allocs/op) and Lambda binary sizes
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/...
	@$(MAKE) --no-print-directory build >/dev/null
	@for fn in $(LAMBDAS); do printf "bootstrap size %-10s %s bytes\n" $$fn $$(stat -c %s bin/$$fn/bootstrap); done

clean: ## Remove build output
	rm -rf bin cdk.out
