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
	$(if $(MAX_DELIVERY_AGE),-c maxDeliveryAge=$(MAX_DELIVERY_AGE)) $(if $(KEEP_LEGACY_TABLE),-c legacyStateTable=$(KEEP_LEGACY_TABLE)) \
	$(if $(STATE_TABLE_NAME),-c stateTableName=$(STATE_TABLE_NAME)) $(if $(STATE_TABLE_STREAM_ARN),-c stateTableStreamArn=$(STATE_TABLE_STREAM_ARN)) \
	$(if $(ARCHIVE_RETENTION_DAYS),-c archiveRetentionDays=$(ARCHIVE_RETENTION_DAYS)) \
	$(if $(SMARTCAR_CREDENTIALS_SECRET),-c smartcarCredentialsSecret=$(SMARTCAR_CREDENTIALS_SECRET)) \
	$(if $(RECONCILE_EVERY),-c reconcileEvery=$(RECONCILE_EVERY)) $(if $(RECONCILE_STALE_AFTER),-c reconcileStaleAfter=$(RECONCILE_STALE_AFTER)) \
	$(if $(SMARTCAR_API_BASE),-c smartcarApiBase=$(SMARTCAR_API_BASE)) $(if $(SMARTCAR_TOKEN_URL),-c smartcarTokenUrl=$(SMARTCAR_TOKEN_URL)) \
	$(if $(SILENCE_ALARM_AFTER),-c silenceAlarmAfter=$(SILENCE_ALARM_AFTER))
comma := ,
# What a failed diff or deploy prints under the CDK's own error.
DEPLOY_HINT := hint: if the error above is about credentials, the account or EC2 IMDS (Unable to resolve AWS account): \
  set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and AWS_REGION; if it asks for a bootstrap \
  (CDKToolkit, /cdk-bootstrap/): run $(CDK) bootstrap aws://ACCOUNT_ID/REGION once per account and region
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true

# The operator tools work on this checkout's local stack (make dev), or on the deployed one with AWS=1.
TARGET := $(if $(AWS),-stack $(STACK))

.PHONY: help build test lint bench deps tools clean synth deploy diff destroy create-secret put-secret \
	dev send dlq-list dlq-show dlq-redrive dlq-purge state migrate-state replay reconcile invoke sam-invoke events-tail events-redrive

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{name[NR] = $$1; text[NR] = $$2; if (length($$1) > width) width = length($$1)} \
	  END {for (i = 1; i <= NR; i++) printf "  %-" width "s  %s\n", name[i], text[i]}'

build: ## Build every Lambda to bin/<name>/bootstrap (linux/arm64)
	@for fn in $(LAMBDAS); do \
	  echo "build bin/$$fn/bootstrap"; \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o bin/$$fn/bootstrap ./lambdas/$$fn || exit 1; \
	done

deps: ## Download Go modules
	$(GO) mod download

tools: ## Install the test tools where they are missing: moto and cfn-lint (pinned, into .tools/venv), qemu-user-static
	@scripts/ensure-test-tools.sh

# stage runs a test stage and prints its name and how long it took.
stage = @start=$$SECONDS; echo "== $(1)"; $(2); rc=$$?; echo "== $(1): $$((SECONDS - start)) s"; exit $$rc

test: deps tools ## Unit, integration (moto) and CDK template tests, fuzz seed corpora, the fault ledger, vet; prints each stage's time
	$(call stage,vet,$(GO) vet ./...)
	@# -p 4 on 2 cores: most packages wait on the emulator, not the CPU.
	$(call stage,tests with -race (all packages but the fault ledger),$(GO) test -race -count=1 -p 4 -skip 'TestLedgerUnderFaults' ./...)
	$(call stage,the envelope scanner's assembly for linux/arm64 (NEON$(comma) under qemu here),scripts/test-arm64.sh)
	$(call stage,the envelope scanner's portable fallback (-tags purego),$(GO) test -count=1 -tags purego ./pkg/smartcar ./pkg/receiver)
	$(call stage,fault-injection ledger (prints its counts; I/O-bound$(comma) so without -race),$(GO) test -count=1 -timeout 20m -v -run 'TestLedgerUnderFaults' ./pkg/devstack)

lint: ## gofmt, go mod tidy -diff, go vet and staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt-formatted:"; echo "$$unformatted"; exit 1; fi
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

bench: deps tools ## One benchmark report: receiver vs HMAC floor, processor, DynamoDB capacity, logs and cost per million webhooks, binaries, pipeline [COST=1: the cost tables alone]
	$(GO) run ./scripts/benchreport $(if $(COST),-cost)

dev: deps tools ## Run the whole pipeline locally on moto, one stack per checkout: receiver on http://127.0.0.1:3000 [DEV_PORT=n]
	@# Built, then run: after Ctrl-C `go run` exits 1 whatever the program did, which make reports as an error.
	@mkdir -p .dev/bin && $(GO) build -o .dev/bin/dev ./scripts/dev
	.dev/bin/dev $(if $(DEV_PORT),-port $(DEV_PORT))

send: ## Sign and POST a body like Smartcar: EVENT=verify|vehicle_state|vehicle_error|FILE (default vehicle_state) [COUNT=n CONCURRENCY=n URL=... AWS=1]
	$(if $(AWS),AMT_SECRET_ID=$(SECRET_NAME) )$(GO) run ./scripts/send $(TARGET) $(if $(URL),-url $(URL)) $(if $(COUNT),-count $(COUNT)) \
	  $(if $(CONCURRENCY),-concurrency $(CONCURRENCY)) $(SEND_FLAGS) $(or $(EVENT),vehicle_state)

dlq-list: ## List the DLQ: eventId, type, vehicle, receives before it was parked, age, failure reason [AWS=1 for the deployed stack]
	$(GO) run ./scripts/dlq $(TARGET) list

dlq-show: ## Show one dead-lettered message: ID=<eventId|messageId>
	$(GO) run ./scripts/dlq $(TARGET) show $(ID)

dlq-redrive: ## Move DLQ messages back to the queue: all, or ID=<eventId>
	$(GO) run ./scripts/dlq $(TARGET) redrive $(ID)

dlq-purge: ## Delete every DLQ message (asks first)
	$(GO) run ./scripts/dlq $(TARGET) purge

state: ## Print a vehicle's stored state: VEHICLE=<vehicleId>
	$(GO) run ./scripts/state $(TARGET) $(VEHICLE)

events-tail: ## Print the domain events published on the local stack's bus [FOLLOW=1 DETAIL=1]
	@# Built, then run: after Ctrl-C (FOLLOW=1) `go run` exits 1 whatever the program did. KEEP=1 leaves them on the
	@# queue; AWS=1 explains how to subscribe a queue of your own to the deployed stack's bus, QUEUE=<url> reads it.
	@mkdir -p .dev/bin && $(GO) build -o .dev/bin/eventstail ./scripts/eventstail
	.dev/bin/eventstail $(TARGET) $(if $(FOLLOW),-follow) $(if $(DETAIL),-detail) $(if $(KEEP),-keep) $(if $(QUEUE),-queue $(QUEUE))

events-redrive: ## Re-publish the stream ranges the publisher gave up on (PublisherFailureQueue) [DRY_RUN=1] AWS=1
	$(GO) run ./scripts/eventsredrive $(TARGET) $(if $(DRY_RUN),-dry-run)

migrate-state: ## Move vehicles from the legacy one-item state table into the entry layout (idempotent) [DRY_RUN=1 START_AFTER=<vehicleId> LEGACY_TABLE=<name>]
	$(GO) run ./scripts/migratestate $(TARGET) $(if $(DRY_RUN),-dry-run) $(if $(START_AFTER),-start-after $(START_AFTER)) \
	  $(if $(LEGACY_TABLE),-legacy-table $(LEGACY_TABLE))

replay: ## Run archived webhooks through processing again: FROM=<time> [TO= TYPE= VEHICLE= EVENTS=id,id|@file RATE=n GENERATION= DRY_RUN=1 YES=1 REBUILD=<table> CREATE=1 AWS=1]
	$(GO) run ./scripts/replay $(TARGET) -from "$(FROM)" $(if $(TO),-to "$(TO)") $(if $(TYPE),-type $(TYPE)) $(if $(VEHICLE),-vehicle $(VEHICLE)) \
	  $(if $(EVENTS),-events $(EVENTS)) $(if $(RATE),-rate $(RATE)) $(if $(GENERATION),-generation $(GENERATION)) $(if $(DRY_RUN),-dry-run) \
	  $(if $(YES),-yes) $(if $(REBUILD),-rebuild $(REBUILD)) $(if $(CREATE),-create-table)

reconcile: ## Poll Smartcar's API for vehicles whose webhooks were lost and merge their signals, newest wins: VEHICLE=id[,id] | SINCE=<time> | STALE=1 [STALE_AFTER= DRY_RUN=1 YES=1 RATE= AWS=1]
	$(GO) run ./scripts/reconcile $(TARGET) $(if $(VEHICLE),-vehicle $(VEHICLE)) $(if $(SINCE),-since "$(SINCE)") $(if $(STALE),-stale) \
	  $(if $(STALE_AFTER),-stale-after $(STALE_AFTER)) $(if $(RATE),-rate $(RATE)) $(if $(DRY_RUN),-dry-run) $(if $(YES),-yes)

invoke: ## Run a function's Linux bootstrap under the Lambda Runtime Interface Emulator, as sam local invoke does but without Docker: FN=receiver|processor|publisher|reconciler EVENT=events/...json (local stack) [IN_PROCESS=1 AWS=1]
	$(if $(AWS),AMT_SECRET_ID=$(SECRET_NAME) )$(GO) run ./scripts/invoke $(TARGET) $(if $(FN),-fn $(FN)) $(if $(EVENT),-event $(EVENT)) $(if $(IN_PROCESS),-in-process)

sam-invoke: synth ## sam local invoke against cdk.out and the local stack: FN=receiver|processor|publisher|reconciler EVENT=events/...json (needs SAM CLI and Docker) [SAM_HOST= AWS=1]
	@command -v sam >/dev/null 2>&1 && docker info >/dev/null 2>&1 || { \
	  echo "sam-invoke needs SAM CLI and a running Docker engine; without them use: make invoke FN=$(FN) EVENT=$(EVENT)" >&2; exit 1; }
	@# The --env-vars file: the stack's resources, the local emulator as the containers reach it (SAM_HOST, default
	@# host.docker.internal), MAX_DELIVERY_AGE=0 (events/ holds recordings). SAM CLI sets only the variables a template
	@# declares, so a copy of the template (for SAM only) declares AWS_ENDPOINT_URL and the rest.
	$(if $(AWS),AMT_SECRET_ID=$(SECRET_NAME) )$(GO) run ./scripts/invoke $(TARGET) -sam-env cdk.out/sam-env.json \
	  -sam-template cdk.out/$(STACK).template.json $(if $(SAM_HOST),-sam-host $(SAM_HOST))
	sam local invoke -t cdk.out/$(STACK).sam-local.template.json $(if $(filter processor,$(FN)),ProcessorFunction,$(if $(filter publisher,$(FN)),PublisherFunction,$(if $(filter reconciler,$(FN)),ReconcilerFunction,ReceiverFunction))) -e $(EVENT) \
	  --env-vars cdk.out/sam-env.json

synth: build ## Synthesize the stack into cdk.out/ (no AWS account needed)
	$(CDK) synth $(CDK_CONTEXT) --no-notices --quiet
	@echo "template: cdk.out/$(STACK).template.json"

diff: build ## Show what a deploy would change
	@$(CDK) diff $(CDK_CONTEXT) --no-notices || { \
	  echo "$(DEPLOY_HINT)" >&2; exit 1; }

deploy: build ## Deploy the stack (needs AWS credentials and a bootstrapped account)
	@$(CDK) deploy $(CDK_CONTEXT) --no-notices --require-approval broadening || { \
	  echo "$(DEPLOY_HINT)" >&2; exit 1; }

destroy: ## Delete the stack (tables and logs are retained unless removalPolicy=destroy)
	$(CDK) destroy $(CDK_CONTEXT) --no-notices

create-secret: ## Store the Application Management Token, read from standard input (hidden prompt), as SECRET_NAME
	@$(GO) build -o bin/tools/secret ./scripts/secret && bin/tools/secret -name "$(SECRET_NAME)" create

put-secret: ## Replace the secret's value, read from standard input (a token, or {"tokens": [...]} while rotating)
	@$(GO) build -o bin/tools/secret ./scripts/secret && bin/tools/secret -name "$(SECRET_NAME)" put

clean: ## Remove build output
	rm -rf bin cdk.out
