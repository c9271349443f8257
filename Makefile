# The two commands of the README: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
APT_PACKAGES := libcurl4-openssl-dev libssl-dev postgresql mariadb-server mariadb-client shellcheck
SWIFT_RELEASE := swift build -c release --static-swift-stdlib

.PHONY: build test unit-test e2e-test demo deps apt-deps python-deps clean

build:
	$(SWIFT_RELEASE)

# SAM's `BuildMethod: makefile` calls this target with ARTIFACTS_DIR set.
build-RotationFunction: build
	cp bootstrap .build/release/rotator "$(ARTIFACTS_DIR)/"

deps: apt-deps python-deps

apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

python-deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check -r local/requirements.txt

unit-test: apt-deps
	swift test

e2e-test: deps build
	$(PYTHON) -m pytest -q tests

test: unit-test e2e-test

demo: deps build
	$(PYTHON) -m local.demo

clean:
	rm -rf .build .build-* dist
