# ratekit — build, run and test. `make help` lists the targets.

VERSION := $(shell cat VERSION)
CC ?= cc
PYTHON := /usr/bin/python3

# Debian packages the build, the tests and `make run` need.
DEB_BUILD := gcc make pkg-config libmicrohttpd-dev libhiredis-dev libcjson-dev libsqlite3-dev libssl-dev
DEB_TEST := libcriterion-dev redis-server redis-tools python3 python3-pytest curl clang-format prometheus nginx \
	docker-compose clang libclang-rt-14-dev chromium caddy python3-yaml python3-fastapi python3-uvicorn python3-django python3-flask
DEB_NODE := nodejs npm

PKGS := libmicrohttpd hiredis libcjson sqlite3 libcrypto
WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -pthread $(WARN) -Iserver/src -Ibuild/gen \
	-DRK_VERSION='"$(VERSION)"' $(shell pkg-config --cflags-only-other $(PKGS) 2>/dev/null)
CFLAGS ?= -O2 -g
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lmicrohttpd -lhiredis -lcjson -lsqlite3 -lcrypto) -pthread -lm
SAN := -O1 -g -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer

SRC := $(shell find server/src -name '*.c' | sort)
LIB_SRC := $(filter-out server/src/main.c,$(SRC))
HDR := $(shell find server/src -name '*.h')
LUA := $(addprefix lua/,fixed_window.lua sliding_window.lua sliding_log.lua token_bucket.lua gcra.lua leaky_bucket.lua concurrency.lua)
SCHEMA := $(sort $(wildcard schema/*.sql))
GEN := build/gen/lua_scripts.c build/gen/schema_sql.c
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
STORE_SRC := $(sort $(wildcard tests/store/*.c))

OBJ := $(patsubst %.c,build/obj/%.o,$(SRC) $(GEN))
SAN_OBJ := $(patsubst %.c,build/san/%.o,$(LIB_SRC) $(GEN))

DASHBOARD_SRC := $(shell find dashboard/src dashboard/public dashboard/index.html dashboard/vite.config.js \
	dashboard/package.json dashboard/package-lock.json -type f 2>/dev/null)

.PHONY: all run run-redis test test-unit test-store test-integration deps deps-test clean format \
	format-check lint help dashboard dist dist-check fuzz test-fuzz test-e2e screenshots
all: build/ratekitd dashboard

help:
	@echo "make            build build/ratekitd and the dashboard"
	@echo "make run        start ratekitd on the embedded store (prints the admin address and token)"
	@echo "make run-redis  start a local redis-server and ratekitd on it"
	@echo "make test       every test suite (installs what it needs)"
	@echo "make format     clang-format the C sources;  make lint: clang-tidy and cppcheck"
	@echo "make deps       install the Debian packages the build needs"
	@echo "make fuzz       run each libFuzzer harness for FUZZ_SECONDS (60)"
	@echo "make bench      measure ratekitd against nginx, Redis and peers (about 10 min; not in make test)"
	@echo "make screenshots  the dashboard flows again, refreshing docs/screenshots"
	@echo "make dist       build dist/ratekit-kit-$(VERSION).zip;  make dist-check: unzip it and run its tests"

# ---- dependencies ----------------------------------------------------------
deps:
	@bash tools/deps.sh $(DEB_BUILD)

# Node: the machine's when it has one, else Debian's; tools/node.sh adds Node 20
# from the npm registry where the dashboard needs 20.19+ and the machine's is older.
deps-test:
	@bash tools/deps.sh $(DEB_BUILD) $(DEB_TEST)
	@command -v node >/dev/null || bash tools/deps.sh $(DEB_NODE)

# ---- the server ------------------------------------------------------------
build/gen/lua_scripts.c: $(LUA) tools/embed.sh
	@mkdir -p $(@D)
	@echo "  EMBED   lua/*.lua"
	@bash tools/embed.sh rk_lua_scripts $(LUA) > $@.tmp && mv $@.tmp $@

build/gen/schema_sql.c: $(SCHEMA) tools/embed.sh
	@mkdir -p $(@D)
	@echo "  EMBED   schema/*.sql"
	@bash tools/embed.sh rk_schema_sql $(SCHEMA) > $@.tmp && mv $@.tmp $@

build/obj/%.o: %.c $(HDR) | $(GEN)
	@mkdir -p $(@D)
	@echo "  CC      $<"
	@$(CC) $(CFLAGS_COMMON) $(CFLAGS) -c $< -o $@

build/san/%.o: %.c $(HDR) | $(GEN)
	@mkdir -p $(@D)
	@echo "  CC san  $<"
	@$(CC) $(CFLAGS_COMMON) $(SAN) -c $< -o $@

build/ratekitd: $(OBJ)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The sanitizer build the black-box tests run.
build/ratekitd-san: $(SAN_OBJ) build/san/server/src/main.o
	@echo "  LINK    $@"
	@$(CC) $(SAN) -o $@ $^ $(LDLIBS)

build/unit-tests: $(SAN_OBJ) $(UNIT_SRC) $(wildcard tests/unit/*.h)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_COMMON) $(SAN) -Wno-missing-prototypes -o $@ $(SAN_OBJ) $(UNIT_SRC) $(LDLIBS) -lcriterion

# Store tests run against a real redis-server that each suite starts itself.
build/store-tests: $(SAN_OBJ) $(STORE_SRC) $(wildcard tests/store/*.h)
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_COMMON) $(SAN) -Wno-missing-prototypes -o $@ $(SAN_OBJ) $(STORE_SRC) $(LDLIBS) -lcriterion

dashboard: dashboard/dist/index.html

dashboard/dist/index.html: $(DASHBOARD_SRC)
	@bash tools/build-dashboard.sh

run: deps all
	@bash tools/run.sh

run-redis: deps all
	@bash tools/deps.sh redis-server redis-tools
	@bash tools/run.sh --redis

.SECONDARY:

# ---- fuzzing (libFuzzer, clang) -------------------------------------------------
FUZZ_TARGETS := rule duration path forwarded jwt json check_request import
FUZZ_SECONDS ?= 60
# -fno-sanitize-recover: undefined behaviour stops the run as a crash would
# (else UBSan prints it and the fuzzer goes on as if nothing happened).
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN) -fno-omit-frame-pointer
FUZZ_OBJ := $(patsubst %.c,build/fuzz/obj/%.o,$(LIB_SRC) $(GEN))
FUZZ_BIN := $(addprefix build/fuzz/fuzz_,$(FUZZ_TARGETS))

build/fuzz/obj/%.o: %.c $(HDR) | $(GEN)
	@mkdir -p $(@D)
	@echo "  CC fuzz $<"
	@clang $(CFLAGS_COMMON) $(FUZZ_CFLAGS) -c $< -o $@

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	@echo "  LINK    $@"
	@clang $(CFLAGS_COMMON) -O1 -g -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $^ $(LDLIBS)

# Each harness for FUZZ_SECONDS, from the seed corpus; crashes land in build/fuzz/crashes/.
fuzz: $(FUZZ_BIN)
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/corpus/$$t build/fuzz/crashes/$$t; \
		echo "fuzz_$$t: $(FUZZ_SECONDS) s"; \
		build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
			-artifact_prefix=build/fuzz/crashes/$$t/ build/fuzz/corpus/$$t tests/fuzz/corpus/$$t \
			> build/fuzz/$$t.log 2>&1; rc=$$?; grep -E "^#[0-9]+.*DONE|ERROR|SUMMARY" build/fuzz/$$t.log; \
			[ $$rc -eq 0 ] || { echo "fuzz_$$t found a crash: build/fuzz/crashes/$$t/ (log build/fuzz/$$t.log)"; exit 1; }; \
	done

# In make test: every seed and every past crash, once, through every harness.
test-fuzz: $(FUZZ_BIN)
	@for t in $(FUZZ_TARGETS); do \
		build/fuzz/fuzz_$$t -runs=0 tests/fuzz/corpus/$$t 2>&1 | grep -qE "Done [0-9]+ runs" \
			|| { echo "fuzz_$$t: a seed or regression input fails"; exit 1; }; \
	done; echo "fuzz regressions: $(words $(FUZZ_TARGETS)) harnesses, every seed passes"

# ---- the kit ---------------------------------------------------------------
dist: all
	@$(PYTHON) tools/dist.py

# Unpacks the zip into an empty folder, as a customer would, and builds and tests it from there.
dist-check: dist
	@bash tools/deps.sh unzip
	@rm -rf build/dist-check && mkdir -p build/dist-check
	@cd build/dist-check && unzip -q ../../dist/ratekit-kit-$(VERSION).zip
	$(MAKE) -C build/dist-check/ratekit-kit-$(VERSION) test

# ---- load and benchmark ----------------------------------------------------
LOAD_SRC := $(sort $(wildcard loadtest/load/*.c))

build/ratekit-load: $(LOAD_SRC) $(wildcard loadtest/load/*.h)
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) -o $@ $(LOAD_SRC) -lm

build/trivial-mhd: loadtest/trivial_mhd.c
	@mkdir -p $(@D)
	@echo "  LINK    $@"
	@$(CC) -std=c11 -D_GNU_SOURCE -pthread $(WARN) $(CFLAGS) -o $@ $< -lmicrohttpd

build/memory-per-key: loadtest/memory_per_key.c $(filter-out build/obj/server/src/main.o,$(OBJ))
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_COMMON) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/deep-keys: loadtest/deep_keys.c $(filter-out build/obj/server/src/main.o,$(OBJ))
	@echo "  LINK    $@"
	@$(CC) $(CFLAGS_COMMON) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Not part of `make test`: slow (about 10 minutes) and noisy. Writes loadtest/results/.
bench: build/ratekitd build/ratekit-load build/trivial-mhd build/memory-per-key build/deep-keys
	@$(PYTHON) loadtest/bench.py

# ---- tests -----------------------------------------------------------------
test: deps-test format-check test-unit test-store test-fuzz test-integration test-e2e

test-unit: build/unit-tests
	bash tools/run-unit.sh build/unit-tests

test-store: build/store-tests
	bash tools/run-unit.sh build/store-tests

test-integration: all build/ratekitd-san
	RATEKIT_BIN=build/ratekitd-san $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# The dashboard in Debian's Chromium, against a real ratekitd and redis-server.
test-e2e: all build/ratekitd-san
	@bash tools/build-dashboard.sh --install
	@cd dashboard && RATEKIT_BIN=build/ratekitd-san bash ../tools/node.sh node --test --test-concurrency=1 e2e/

# The end-to-end flows again, refreshing the README's pictures in docs/screenshots.
screenshots: all build/ratekitd-san
	@bash tools/build-dashboard.sh --install
	@cd dashboard && RATEKIT_BIN=build/ratekitd-san RATEKIT_SCREENSHOTS=docs/screenshots \
		bash ../tools/node.sh node --test --test-concurrency=1 e2e/

# ---- hygiene ---------------------------------------------------------------
FORMATTED = $(SRC) $(HDR) $(UNIT_SRC) $(STORE_SRC) $(LOAD_SRC) $(wildcard loadtest/*.c loadtest/load/*.h)

format:
	clang-format -i $(FORMATTED)

format-check:
	@clang-format --dry-run --Werror $(FORMATTED) && echo "clang-format: clean"

lint: $(GEN)
	clang-tidy --quiet $(SRC) -- $(CFLAGS_COMMON)
	cppcheck --quiet --inline-suppr --error-exitcode=1 --enable=warning,performance,portability --std=c11 -Iserver/src server/src

clean:
	rm -rf build dist dashboard/dist
