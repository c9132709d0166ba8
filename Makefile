# smartcar-webhook-receiver. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
LAMBDAS := $(notdir $(wildcard lambdas/*))
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0
BUILD_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"
# The CDK CLI, pinned; run through npx, never installed globally.
CDK := npx --yes aws-cdk@2.1031.2
# Deployment settings, passed to the CDK app as context (see cdk.json).
STACK ?= SmartcarWebhookReceiver
SECRET_NAME ?= smartcar/amt
CDK_CONTEXT := -c stackName=$(STACK) -c secretName=$(SECRET_NAME) $(if $(ALARM_EMAIL),-c alarmEmail=$(ALARM_EMAIL)) \
	$(if $(MAX_DELIVERY_AGE),-c maxDeliveryAge=$(MAX_DELIVERY_AGE)) $(if $(KEEP_LEGACY_TABLE),-c legacyStateTable=$(KEEP_LEGACY_TABLE))
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true

# The operator tools work on the local stack, or on the deployed one with AWS=1.
TARGET := $(if $(AWS),-stack $(STACK))
EVENT ?= vehicle_state

.PHONY: help build test lint bench deps tools clean synth deploy diff destroy create-secret put-secret \
	dev send dlq-list dlq-show dlq-redrive dlq-purge state migrate-state invoke sam-invoke

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## Build every Lambda to bin/<name>/bootstrap (linux/arm64)
	@for fn in $(LAMBDAS); do \
	  echo "build bin/$$fn/bootstrap"; \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o bin/$$fn/bootstrap ./lambdas/$$fn || exit 1; \
	done

deps: ## Download Go modules
	$(GO) mod download

tools: ## Install the test tools (moto, cfn-lint, qemu-user-static) where they are missing
	@scripts/ensure-test-tools.sh

test: deps tools ## Unit, integration (moto) and CDK template tests, fuzz seed corpora, the fault ledger, vet
	$(GO) vet ./...
	$(GO) test -race -count=1 -skip 'TestLedgerUnderFaults' ./...
	@echo "the envelope scanner's assembly for linux/arm64 (NEON, under qemu here), and its portable fallback:"
	@scripts/test-arm64.sh
	$(GO) test -count=1 -tags purego ./pkg/smartcar ./pkg/receiver
	@echo "fault-injection ledger (prints its counts; I/O-bound, so without -race):"
	$(GO) test -count=1 -timeout 20m -v -run 'TestLedgerUnderFaults' ./pkg/devstack

lint: ## gofmt, go mod tidy -diff, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench: deps tools ## One benchmark report: receiver vs HMAC floor, processor, DynamoDB requests, binaries, pipeline throughput
	$(GO) run ./scripts/benchreport

dev: deps tools ## Run the whole pipeline locally on the moto emulator (receiver on http://127.0.0.1:3000)
	$(GO) run ./scripts/dev

send: ## Sign and POST a body like Smartcar: EVENT=verify|vehicle_state|vehicle_error|FILE [COUNT=n CONCURRENCY=n URL=...]
	$(GO) run ./scripts/send $(if $(URL),-url $(URL)) $(if $(COUNT),-count $(COUNT)) $(if $(CONCURRENCY),-concurrency $(CONCURRENCY)) $(SEND_FLAGS) $(EVENT)

dlq-list: ## List the DLQ: eventId, type, vehicle, failure reason, receives, age [AWS=1 for the deployed stack]
	$(GO) run ./scripts/dlq $(TARGET) list

dlq-show: ## Show one dead-lettered message: ID=<eventId|messageId>
	$(GO) run ./scripts/dlq $(TARGET) show $(ID)

dlq-redrive: ## Move DLQ messages back to the queue: all, or ID=<eventId>
	$(GO) run ./scripts/dlq $(TARGET) redrive $(ID)

dlq-purge: ## Delete every DLQ message (asks first)
	$(GO) run ./scripts/dlq $(TARGET) purge

state: ## Print a vehicle's stored state: VEHICLE=<vehicleId>
	$(GO) run ./scripts/state $(TARGET) $(VEHICLE)

migrate-state: ## Move vehicles from the legacy one-item state table into the entry layout (idempotent) [DRY_RUN=1 START_AFTER=<vehicleId> LEGACY_TABLE=<name>]
	$(GO) run ./scripts/migratestate $(TARGET) $(if $(DRY_RUN),-dry-run) $(if $(START_AFTER),-start-after $(START_AFTER)) \
	  $(if $(LEGACY_TABLE),-legacy-table $(LEGACY_TABLE))

invoke: ## Run a handler in-process: FN=receiver|processor EVENT=events/...json (against the local stack)
	$(GO) run ./scripts/invoke $(TARGET) -fn $(FN) -event $(EVENT)

sam-invoke: synth ## sam local invoke against cdk.out: FN=receiver|processor EVENT=events/...json (needs SAM CLI and Docker)
	@command -v sam >/dev/null 2>&1 && docker info >/dev/null 2>&1 || { \
	  echo "sam-invoke needs SAM CLI and a running Docker engine; without them use: make invoke FN=$(FN) EVENT=$(EVENT)" >&2; exit 1; }
	@# events/ holds recorded deliveries: their deliveredAt is outside the receiver's replay window.
	@printf '{"ReceiverFunction": {"MAX_DELIVERY_AGE": "0"}}\n' > cdk.out/sam-env.json
	sam local invoke -t cdk.out/$(STACK).template.json $(if $(filter processor,$(FN)),ProcessorFunction,ReceiverFunction) -e $(EVENT) \
	  --env-vars cdk.out/sam-env.json

synth: build ## Synthesize the stack into cdk.out/ (no AWS account needed)
	$(CDK) synth $(CDK_CONTEXT) --no-notices --quiet
	@echo "template: cdk.out/$(STACK).template.json"

diff: build ## Show what a deploy would change
	$(CDK) diff $(CDK_CONTEXT) --no-notices

deploy: build ## Deploy the stack (needs AWS credentials and a bootstrapped account)
	$(CDK) deploy $(CDK_CONTEXT) --no-notices --require-approval broadening

destroy: ## Delete the stack (tables and logs are retained unless removalPolicy=destroy)
	$(CDK) destroy $(CDK_CONTEXT) --no-notices

create-secret: ## Store the Application Management Token, read from standard input, as SECRET_NAME
	@printf 'Application Management Token (input hidden): ' >&2; IFS= read -rs token; echo >&2; \
	  [ -n "$$token" ] || { echo "no token given" >&2; exit 1; }; \
	  printf '%s' "$$token" | aws secretsmanager create-secret --name "$(SECRET_NAME)" \
	    --description "Smartcar Application Management Token" --secret-string file:///dev/stdin --query ARN --output text

put-secret: ## Replace the secret's value, read from standard input (a token, or {"tokens": [...]} while rotating)
	@printf 'New secret value (input hidden): ' >&2; IFS= read -rs value; echo >&2; \
	  [ -n "$$value" ] || { echo "no value given" >&2; exit 1; }; \
	  printf '%s' "$$value" | aws secretsmanager put-secret-value --secret-id "$(SECRET_NAME)" \
	    --secret-string file:///dev/stdin --query VersionId --output text

clean: ## Remove build output
	rm -rf bin cdk.out
