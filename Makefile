# gowsgi's commands: `make` installs what the build needs that is missing
# (Debian packages) and builds bin/gowsgi; `make test` also installs what the
# tests need (web servers, wrk, the frameworks) and runs every test; `make
# install` copies bin/gowsgi to $(DESTDIR)$(PREFIX)/bin. `make
# PYTHON=python3.12` builds against another CPython that has a shared
# libpython and an -embed pkg-config file.

SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go

# PYTHON is the interpreter whose libpython gowsgi embeds: a command on PATH,
# a path, or a name found under pyenv's versions (python3.12, say). Debian's
# by default, whatever python3 comes first on PATH.
PYTHON ?= /usr/bin/python3

# The oldest Go that builds gowsgi and passes its tests: the go line of
# go.mod, which its dependencies' own go lines set (prometheus/client_golang,
# prometheus/common, x/sys).
GO_MIN := $(shell sed -n 's/^go //p' go.mod)

# PREFIX is where `make install` puts bin/gowsgi; DESTDIR, when set, is
# prepended for staged installs (packaging).
PREFIX ?= /usr/local

# Debian packages the build needs.
BUILD_DEBS := gcc pkg-config libpython3-dev python3

# Debian packages only the tests need (and curl, for the README's examples):
# the frameworks the end-to-end tests run, venv for the --home tests; the
# web servers run the tests of gateways behind them
# (e2e/webservers_test.go); wrk loads the server in the overload tests
# (e2e/limits_test.go); iproute2's ss reads a listen backlog
# (e2e/process_options_test.go).
TEST_DEBS := python3-flask python3-django python3-bottle python3-falcon \
	python3-werkzeug python3-venv curl \
	nginx lighttpd apache2 libapache2-mod-proxy-uwsgi libapache2-mod-fcgid \
	wrk iproute2 uwsgi uwsgi-plugin-python3 python3-sentry-sdk haproxy python3-pastedeploy

# The versions `make test-pythons` looks for.
TEST_PYTHONS := 3.9 3.10 3.11 3.12 3.13

# Lazily evaluated, so they are read after `deps` has installed Python.
py_exe = $(shell $(call resolve_python,$(PYTHON)))
py_var = $(shell $(py_exe) -c 'import sysconfig; print(sysconfig.get_config_var("$(1)"))')
# cgo finds libpython through the chosen Python's pkg-config directory, and
# the binary records libpython's directory (rpath) so it runs without
# LD_LIBRARY_PATH.
cgo_env = PKG_CONFIG_PATH=$(call py_var,LIBPC) CGO_LDFLAGS="-Wl,-rpath,$(call py_var,LIBDIR)"

# install_debs installs those of the Debian packages $(1) that are missing.
define install_debs
missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
if [ -n "$$missing" ]; then \
	echo "installing:" $$missing; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
fi
endef

# resolve_python prints the path of a working interpreter named $(1): on
# PATH, or the newest matching one under pyenv's versions.
define resolve_python
for c in "$$(command -v $(1) 2>/dev/null)" $$(ls -d $$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/*/bin/$(1) 2>/dev/null | sort -V -r); do \
	[ -n "$$c" ] && "$$c" -c '' 2>/dev/null && { echo "$$c"; break; }; \
done
endef

.PHONY: all deps test-deps build install test test-go test-race test-pythons test-fuzz lint clean

all: deps build

deps:
	@$(call install_debs,$(BUILD_DEBS))
	@command -v $(GO) >/dev/null || { echo "gowsgi needs Go $(GO_MIN) or newer on PATH (https://go.dev/dl)"; exit 1; }

test-deps: deps
	@$(call install_debs,$(TEST_DEBS))

build:
	@[ -n "$(py_exe)" ] || { echo "no working interpreter found for PYTHON=$(PYTHON)"; exit 1; }
	$(cgo_env) $(GO) build -o bin/gowsgi ./cmd/gowsgi

install: build
	install -D -m 0755 bin/gowsgi $(DESTDIR)$(PREFIX)/bin/gowsgi

lint:
	@out=$$(gofmt -l cmd pyembed wsgi server gateways internal e2e bench); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(cgo_env) $(GO) vet ./...

test: test-deps build lint test-go test-race test-pythons test-fuzz

test-go:
	$(cgo_env) GOWSGI_BIN=$(CURDIR)/bin/gowsgi $(GO) test -count=1 -timeout 15m ./...

# The tests whose failure is a data race only the race detector sees
# (harakiri reading jobs that are being reused), and the raw socket calls.
test-race:
	$(cgo_env) $(GO) test -count=1 -race -run WhileJobsAreReused ./server
	$(cgo_env) $(GO) test -count=1 -race ./internal/...

# Every fuzz target briefly, beyond the seed corpora go test already runs.
# The budget is a count of inputs, not a time: before Go 1.27 a time budget
# can end a run that found nothing with a spurious "context deadline
# exceeded" failure when the machine is loaded (go.dev/issue/75804).
test-fuzz:
	$(MAKE) --no-print-directory fuzz FUZZTIME=5000x

# Builds gowsgi against every CPython from TEST_PYTHONS found on the machine
# and runs the embedding tests and the PEP 3333 probe suite with each.
test-pythons:
	@set -e; for v in $(TEST_PYTHONS); do \
		exe=$$($(call resolve_python,python$$v)); \
		if [ -z "$$exe" ]; then echo "test-pythons: skipping Python $$v: not found on this machine"; continue; fi; \
		pc=$$($$exe -c 'import sysconfig; print(sysconfig.get_config_var("LIBPC"))'); \
		lib=$$($$exe -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))'); \
		if [ ! -f "$$pc/python-$$v-embed.pc" ]; then echo "test-pythons: skipping Python $$v ($$exe): no python-$$v-embed.pc"; continue; fi; \
		echo "test-pythons: Python $$v ($$exe)"; \
		export PKG_CONFIG_PATH=$$pc CGO_LDFLAGS="-Wl,-rpath,$$lib"; \
		$(GO) build -o bin/gowsgi-$$v ./cmd/gowsgi; \
		$(GO) test -count=1 ./pyembed; \
		GOWSGI_BIN=$(CURDIR)/bin/gowsgi-$$v GOWSGI_EXPECT_PYTHON=$$v $(GO) test -count=1 -run 'TestPEP3333|TestLazyApps' ./e2e; \
	done

clean:
	rm -rf bin

# The side-by-side benchmark (bench/, docs/benchmarks.md): gowsgi against
# Gunicorn, uWSGI (--http11-socket and the --http router) and waitress on the
# same apps, and gowsgi against uWSGI behind nginx's uwsgi_pass; the summary
# gives the req/s ratios and the CPU per request of master and workers.
# `make bench` takes about 19 minutes and rewrites docs/benchmarks.md and
# docs/benchmarks.png; `make bench-quick` (under 3 minutes) prints a smaller
# report to stdout.
BENCH_DEBS := wrk gunicorn uwsgi uwsgi-plugin-python3 python3-waitress python3-flask gnuplot-nox nginx

.PHONY: bench bench-quick bench-deps

bench-deps:
	@missing=$$(for p in $(BENCH_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

bench: bench-deps build
	$(GO) run ./bench/cmd/benchrun -gowsgi bin/gowsgi -out docs/benchmarks.md -png docs/benchmarks.png

bench-quick: bench-deps build
	$(GO) run ./bench/cmd/benchrun -quick -gowsgi bin/gowsgi -d 2s -rounds 1

# The soak test (e2e/soak_test.go): a million requests through one
# worker, checking its RSS and Python's allocated blocks stay flat after the
# first 100,000; about 5 minutes, at most 20. GOWSGI_SOAK_REQUESTS,
# GOWSGI_SOAK_ROUTES and GOWSGI_SOAK_THREADS shorten or narrow it.
.PHONY: soak

soak: build
	$(cgo_env) GOWSGI_BIN=$(CURDIR)/bin/gowsgi $(GO) test -tags soak -run TestSoak -count=1 -v -timeout 30m ./e2e

# Fuzz targets (go test -fuzz) for the HTTP front end, the uwsgi, SCGI and
# FastCGI parsers and the master/worker framing: `make fuzz` runs every Fuzz
# function of FUZZ_PACKAGES for FUZZTIME each, one after another
# (`make fuzz FUZZTIME=5s` for a brief run, `FUZZTIME=5000x` for a count). Inputs that fail are written
# under the package's testdata/fuzz/ and run with every `go test` after.
FUZZTIME ?= 30s
FUZZ_PACKAGES := ./gateways ./wsgi

.PHONY: fuzz

fuzz:
	@set -e; for pkg in $(FUZZ_PACKAGES); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz: $$pkg $$target for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# The list of uWSGI's option names (cmd/gowsgi/uwsgi_options.txt), read from
# the installed uWSGI's --help: cmd/gowsgi/config_classes.go classifies those
# gowsgi does not implement (a test checks that each one is), and --strict
# refuses only names uWSGI does not know either.
.PHONY: uwsgi-options

uwsgi-options: bench-deps
	@{ echo "# The options uWSGI knows, one a line without dashes: \`uwsgi --plugin python3,http --help\`"; \
	  echo "# of uWSGI $$(uwsgi --version) (core, python3 and http plugins), made by \`make uwsgi-options\`."; \
	  echo "# Those gowsgi does not implement are classified in config_classes.go: tuning knobs are"; \
	  echo "# accepted with a warning (even under --strict, as uWSGI would start with them), the rest"; \
	  echo "# refused; --strict refuses the keys uWSGI does not know either."; \
	  uwsgi --plugin python3,http --help | grep '^    -' | sed -E 's/^    (-[a-zA-Z]\|)?--([^ ]+).*/\2/' | sort -u; \
	} > cmd/gowsgi/uwsgi_options.txt
