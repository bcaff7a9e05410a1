# The README's two commands: `make demo` (a real benchmark on this machine) and `make test`.
GO ?= go
OLLAMA_VERSION ?= 0.17.4
FUZE := bin/fuze

.PHONY: all build test fuzz demo ollama deps vet clean

all: build

build:
	$(GO) build -o $(FUZE) ./cmd/fuze

# Debian packages and Go modules the build and the tests need.
deps:
	scripts/ensure-build-deps.sh
	$(GO) mod download

# A real Ollama built from its Go module into .cache/ (reused when present).
ollama: deps
	OLLAMA_VERSION=$(OLLAMA_VERSION) scripts/ensure-ollama.sh >/dev/null

vet:
	$(GO) vet ./...

# FUZE_TEST_OLLAMA points the tests at the real Ollama; FUZE_REQUIRE_OLLAMA turns
# "Ollama not found" skips into failures, so `make test` cannot pass without it.
# FUZE_REQUIRE_BUILD_TOOLS does the same for the installers' real CMake and venv tests, and
# FUZE_REQUIRE_BROWSER for the report's test in headless Chromium.
test: ollama vet
	FUZE_TEST_OLLAMA="$$(OLLAMA_VERSION=$(OLLAMA_VERSION) scripts/ensure-ollama.sh)" FUZE_REQUIRE_OLLAMA=1 FUZE_REQUIRE_BUILD_TOOLS=1 FUZE_REQUIRE_BROWSER=1 \
		$(GO) test -count=1 ./...

# Each fuzz target for FUZZTIME, one after the other (package:target). Their seed corpora
# (testdata/fuzz/) already run as unit tests in `go test`; a failure leaves its input there.
FUZZTIME ?= 30s
FUZZ_TARGETS := \
	./internal/envfile:FuzzParse \
	./internal/sse:FuzzReader \
	./internal/sse:FuzzChunking \
	./internal/ollamaapi:FuzzGenerateStream \
	./internal/results:FuzzReadRunCSV \
	./internal/results:FuzzRunCSVRoundTrip \
	./internal/results:FuzzReadRunJSONL \
	./internal/stack/vllm:FuzzFastChunk

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

demo: build ollama
	FUZE_OLLAMA="$$(OLLAMA_VERSION=$(OLLAMA_VERSION) scripts/ensure-ollama.sh)" scripts/demo.sh

clean:
	rm -rf bin
