# The two commands of the quick start are `make dev` and `make test`.
# Everything else is a building block or an operator's tool.
SHELL := /bin/bash
PORT ?= 9000
ENV ?=

.PHONY: setup setup-serve dev test test-host lint e2e fmt clean

setup:            ## install the pinned toolchain and packages (idempotent)
	@scripts/setup.sh

setup-serve:      ## only what serving needs (no browser, no test packages)
	@scripts/setup.sh serve

dev: setup-serve  ## build both Workers and serve them on 127.0.0.1:$(PORT); any setting as NAME=value
	@WASM_OPT=0 PORT=$(PORT) scripts/dev.sh

test: setup       ## every test: host, clippy (host + wasm), end-to-end
	@scripts/test.sh

test-host:        ## host unit and property tests of the core only
	cargo test --workspace

lint:             ## fmt check and clippy, host and wasm32; tsc on the client helper's types
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --target wasm32-unknown-unknown -p router -p rooms -- -D warnings
	node_modules/.bin/tsc -p web/client/tsconfig.json

e2e:              ## the black-box tests only (Workers started and stopped for you)
	@E2E_ONLY=1 scripts/test.sh

fmt:
	cargo fmt --all

clean:
	rm -rf target workers/*/build .wrangler dist

# --- operators (need a Cloudflare login; ENV=staging|production) -----------
.PHONY: deploy-rooms deploy-router upload-rooms upload-router promote-rooms promote-router rollback-rooms rollback-router

deploy-rooms: setup      ## deploy the rooms tier (first when the internal contract changes)
	scripts/deploy.sh deploy rooms $(ENV)
deploy-router: setup     ## deploy the router tier
	scripts/deploy.sh deploy router $(ENV)
upload-rooms upload-router: setup   ## upload a new version without routing traffic to it
	scripts/deploy.sh upload $(@:upload-%=%) $(ENV)
promote-rooms promote-router:       ## VERSION=<id> PERCENT=<n>: route PERCENT% to VERSION
	scripts/deploy.sh promote $(@:promote-%=%) $(ENV) $(VERSION) $(PERCENT)
rollback-rooms rollback-router:     ## back to the previous version (or VERSION=<id>)
	scripts/deploy.sh rollback $(@:rollback-%=%) $(ENV) $(VERSION)

.PHONY: fuzz
fuzz:             ## run every fuzz target for FUZZ_SECONDS (default 60) each
	@scripts/fuzz.sh

.PHONY: bench
bench: setup      ## ours on bare workerd beside the JS floor, peer@1.0.2 and wrangler dev; writes docs/benchmarks.md
	@scripts/bench.sh

.PHONY: soak
soak: setup       ## 200 peers, 50 rooms, 10 min, churn + rooms-tier restart; report in target/soak/
	@scripts/soak.sh
