# The two commands of the README: `make demo` and `make test`. Both install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
# What building and deploying the package needs (make build, package, sam-build, deploy): nothing of
# the tests, no database. packaging/apt-deps.sh installs what is missing only as root on Debian or
# Ubuntu; elsewhere it says what is missing and points to the container route.
BUILD_PACKAGES := libssl-dev pkg-config gcc make curl ca-certificates patch xz-utils zip unzip patchelf \
	binutils python3 python3-venv
# What the tests, the demo and the linters need besides: the databases the host scripts run against,
# shellcheck, busybox for the minimal root, Debian's shared libcurl for a plain `swift build`.
TEST_PACKAGES := libcurl4-openssl-dev postgresql mariadb-server mariadb-client shellcheck busybox-static rsync
SWIFT_RELEASE := swift build -c release --static-swift-stdlib
# The function's architecture (template.yaml's Architectures): x86_64 or arm64. The binary is built
# for the machine make runs on; packaging/stage.sh refuses a package for another one.
ARCHITECTURE ?= x86_64
export ARCHITECTURE

.PHONY: build test unit-test e2e-test chaos long-form-status threat-model-counts interleavings demo deps apt-deps build-deps python-deps clean template deploy-fleet enroll fleet-status

build: libcurl
	$(SWIFT_RELEASE)

# The libcurl the binary links statically (HTTP and HTTPS over OpenSSL only, Debian's source and
# patches), built once per Debian version into .build-curl. Its libcurl.pc comes first on the
# PKG_CONFIG_PATH SwiftPM reads for CCurl; `swift build` without make finds Debian's shared libcurl.
CURL_BUILD := $(CURDIR)/.build-curl
export PKG_CONFIG_PATH := $(CURL_BUILD)/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH))
.PHONY: libcurl
libcurl: build-deps
	packaging/build-libcurl.sh $(CURL_BUILD)

deps: apt-deps python-deps

apt-deps:
	@packaging/apt-deps.sh $(BUILD_PACKAGES) $(TEST_PACKAGES)

build-deps:
	@packaging/apt-deps.sh $(BUILD_PACKAGES)

python-deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check -r local/requirements.txt

unit-test: apt-deps libcurl
	swift test

# --durations: the slowest tests in every run's log, to keep make test inside its 30-minute budget.
# Two processes (pytest-xdist), a package each at a time (pytests/conftest.py groups them): the
# suite mostly waits on databases, the local stack and host scripts, so two overlap well on 2 cores.
TEST_PROCESSES ?= 2
e2e-test: deps build
	$(PYTHON) -m pytest -q -n $(TEST_PROCESSES) --dist loadgroup --durations=30 pytests

test: unit-test e2e-test

# The fault suite's long form (`make test` runs its short form), in pieces (ops/long_form.py): each
# test file of CHAOS_SET runs in a pytest process of its own, and its outcomes are recorded in
# docs/chaos/<piece>.json when it ends, with the digest of the code and tests it ran on. A run that
# is stopped, or a session that ends, loses only the piece under way: the next run, from a fresh
# clone of the same code too, runs the pieces not yet recorded on it. Once every piece is, the tables
# of docs/RELIABILITY.md are rewritten from their outcomes. The interleaving proof is the last piece:
# a pair run to its end in $(INTERLEAVING_STATE) on the same code is counted, not run again (run the
# proof first, `make interleavings`, which can share it among processes). PIECES runs only the
# pieces whose path holds one of its words, e.g. PIECES="kill_points aws_faults".
# The set is ops/long_form.py's CHAOS_SET: pytests/e2e and HOST_ATTACK_TESTS.
chaos: deps build tools
	$(PYTHON) -m ops.long_form chaos $(foreach piece,$(PIECES),--only $(piece))

# Where the long forms stand (the proof's pairs, the chaos pieces), on the code checked out.
long-form-status: python-deps
	$(PYTHON) -m ops.long_form status

# The proof's counts in docs/THREAT-MODEL.md's Open section, rewritten from docs/interleavings
# (refused while a file there is on other code than the checkout's: run the proof first).
threat-model-counts: python-deps
	$(PYTHON) -m ops.long_form threat-model docs/THREAT-MODEL.md

# The interleaving proof's long form alone, in pieces: each pair's search (where it stands, its
# counts, what broke) is kept in $(INTERLEAVING_STATE)/<engine>-<pair>.json after every schedule, so
# a run that is stopped (or several, each on its own pairs) continues where it stopped, as long as
# the code is the same (test_interleavings.py's code_digest: the checkout's files and the real
# parts' versions, not where they were built). The files are committed: a proof that takes longer
# than one machine's session is continued from a fresh clone. A run on other code (uncommitted
# changes included) sets a pair's file aside and starts it again. PAIRS selects by pytest -k, e.g.
# PAIRS="mariadb and rollback".
# INTERLEAVING_PROCESSES pytest processes (pytest-xdist, a pair at a time each, idle ones taking
# pairs from busy ones' queues) share the pairs, each with its own local stack and databases: a
# schedule mostly waits on the hosts and the function, so 3 keep 2 cores busy.
INTERLEAVING_STATE := docs/interleavings
INTERLEAVING_PROCESSES ?= 1
interleavings: deps build tools
	ROTATOR_CHAOS=full ROTATOR_INTERLEAVING_STATE=$(CURDIR)/$(INTERLEAVING_STATE) \
	$(PYTHON) -m pytest -q -p no:benchmark -n $(INTERLEAVING_PROCESSES) --dist worksteal pytests/e2e/test_interleavings.py \
	-k "every_interleaving$(if $(PAIRS), and ($(PAIRS)))"

# The attacks of docs/THREAT-MODEL.md alone, long form (their table is make chaos's). HOST_ATTACK_TESTS
# is also in ops/long_form.py's set (a test keeps the two lists the same).
HOST_ATTACK_TESTS := pytests/hosts/test_secret_attacks.py pytests/hosts/test_mysql_attacks.py pytests/hosts/test_killed_runs.py \
	pytests/hosts/test_postgres_attacks.py pytests/hosts/test_hostile_identifiers.py pytests/hosts/test_sqlserver_script.py \
	pytests/template/test_hardening.py
E2E_ATTACK_TESTS := pytests/e2e/test_attacks.py pytests/e2e/test_document_attacks.py \
	pytests/e2e/test_concurrency.py::test_a_late_set_after_a_rollback_changes_nothing
.PHONY: attacks
attacks: deps build tools
	ROTATOR_CHAOS=full $(PYTHON) -m pytest -q $(HOST_ATTACK_TESTS) $(E2E_ATTACK_TESTS)

# The fleet simulator (local/fleet.py, docs/FLEET.md): N secrets with HOSTS stand-in hosts each (and
# the first REAL on real PostgreSQL and MariaDB), rotated within one window by at most CONCURRENCY
# function processes under the assumed per-API SSM quotas (SEND_RATE SendCommand and POLL_RATE
# ListCommandInvocations and GetCommandInvocation a second) and Secrets Manager's 50 writes a second.
# FLEET_ARGS: more options, e.g. --compare <a previous bootstrap> (`python3 -m local.fleet --help`).
# The report goes to FLEET_JSON, which local/fleet_chart.py and local/fleet_cost.py read.
N ?= 100
HOSTS ?= 1
REAL ?= 20
CONCURRENCY ?= 10
SEND_RATE ?= 5
POLL_RATE ?= 10
FLEET_JSON ?= .local-state/fleet.json
.PHONY: fleet
fleet: deps build
	$(PYTHON) -m local.fleet --secrets $(N) --hosts $(HOSTS) --real $(REAL) --concurrency $(CONCURRENCY) \
		--send-rate $(SEND_RATE) --poll-rate $(POLL_RATE) --json $(FLEET_JSON) $(FLEET_ARGS)

# The mutation gate (ops/mutate): every mutant of the files that decide safety, built and run against
# the tests that cover its file in a scratch copy (.build-mutate); rewrites docs/MUTATION.md and fails
# under 90% killed in any file. Long (about 40 minutes for the 411 Swift mutants here), so apart
# from `make test`, which runs its short form (pytests/mutation). MUTATE_ARGS: e.g. --only <file>.
.PHONY: mutate
mutate: deps
	$(PYTHON) -m ops.mutate $(MUTATE_ARGS)

demo: deps build
	$(PYTHON) -m local.demo

# The benchmark against a Python peer (bench/run.py); it rewrites docs/BENCHMARKS.md and its chart.
# BENCH_RUNS alternating runs of each function. (`make build` builds bench's sigv4-bench too.)
BENCH_RUNS ?= 20
.PHONY: bench
bench: deps package
	$(PYTHON) -m bench.run --runs $(BENCH_RUNS)

clean:
	rm -rf .build .build-* dist

# Packaging
# dist/rotator.zip, the deployment package for provided.al2023, laid out by packaging/stage.sh.
# zip keeps the Unix mode bits (bootstrap and rotator stay executable); -D: no directory entries.
.PHONY: package check-package

package: build-deps
	rm -rf dist/rotator dist/rotator.zip
	packaging/stage.sh dist/rotator
	cd dist/rotator && zip -q -r -X -D ../rotator.zip .
	@echo "dist/rotator.zip ($(ARCHITECTURE)): $$(wc -c <dist/rotator.zip | tr -d ' ') bytes, $$(unzip -Z1 dist/rotator.zip | wc -l | tr -d ' ') files"

# dist/template.yaml: template.yaml with the function's code being dist/rotator.zip as it is
# (ops/deploy_template.py), for `sam deploy --template-file dist/template.yaml`, which then builds
# nothing: CI's deploy job ships the zip its tests proved. It names the zip; it does not make it.
.PHONY: deploy-template
deploy-template:
	$(PYTHON) -m ops.deploy_template dist/template.yaml

# The package's proofs: its contents, its glibc versions, a rotation in a minimal root.
check-package: deps
	$(PYTHON) -m pytest -q pytests/package

# Operating and linting
# SAM CLI and actionlint live in a virtualenv of their own (pinned in local/requirements-tools.txt).
# `make deploy` builds through SAM and deploys (guided the first time, samconfig.toml after);
# `make rotate` / `make status|doctor|cancel` take SECRET_ID=<name or ARN>; `make lint` runs every linter.
TOOLS_VENV := .build-tools/venv
SAM := SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam
.PHONY: tools sam-build deploy rotate status doctor cancel lint build-RotationFunction

tools: $(TOOLS_VENV)/.installed

# build-deps: python3-venv (order-only: checked, never a reason to reinstall).
$(TOOLS_VENV)/.installed: local/requirements-tools.txt | build-deps
	rm -rf $(TOOLS_VENV)
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install -q --disable-pip-version-check -r local/requirements-tools.txt
	touch $@

# The template, workflow and shell-script tests (pytests/template) need the tools.
e2e-test: tools

# SAM's `BuildMethod: makefile` calls this target with ARTIFACTS_DIR set.
build-RotationFunction:
	packaging/stage.sh "$(ARTIFACTS_DIR)"

# --build-in-source: make runs in this checkout (SwiftPM builds incrementally) instead of in a copy.
sam-build: tools build-deps
	$(SAM) build --build-in-source

deploy: sam-build
	@if [ -f samconfig.toml ]; then \
		echo "deploying with samconfig.toml"; $(SAM) deploy; \
	else \
		echo "no samconfig.toml: guided deployment (it writes samconfig.toml)"; $(SAM) deploy --guided; \
	fi

# The shared layout (docs/deploying.md, "Deploying a fleet"): the shared rotator stack FLEET once per
# account and region (template-fleet.yaml), then one stack per enrolled secret (template-secret.yaml),
# which never changes the shared one. PARAMS: parameter overrides, Key=Value separated by spaces.
FLEET ?= rotator
deploy-fleet: tools build-deps
	$(SAM) build --build-in-source --template-file template-fleet.yaml
	$(SAM) deploy --stack-name "$(FLEET)" --capabilities CAPABILITY_IAM --resolve-s3 --no-fail-on-empty-changeset \
		$(if $(PARAMS),--parameter-overrides $(PARAMS))

enroll:
	@test -n "$(NAME)" -a -n "$(PARAMS)" || { echo 'usage: make enroll NAME=<stack of this secret> PARAMS="DatabaseEngine=... LoginName=... DatabaseHost=... DatabaseInstanceIds=... SecretAdministratorArns=..." [FLEET=rotator]' >&2; exit 2; }
	aws cloudformation deploy --template-file template-secret.yaml --stack-name "$(NAME)" --no-fail-on-empty-changeset \
		--parameter-overrides RotatorStackName="$(FLEET)" $(PARAMS)

rotate:
	@test -n "$(SECRET_ID)" || { echo "usage: make rotate SECRET_ID=<secret name or ARN>" >&2; exit 2; }
	aws secretsmanager rotate-secret --secret-id "$(SECRET_ID)"

# The operator commands of the binary (README, "Operating it"); ARGS=--json for scripts. The binary
# reads credentials and region from the environment only: when none are set, the AWS CLI's profile
# (AWS_PROFILE, ~/.aws, as `make rotate` uses) provides them through `aws configure export-credentials`
# (AWS CLI v2).
ROTATOR := .build/release/rotator
OPERATOR_ENV := if [ -z "$$AWS_ACCESS_KEY_ID" ]; then \
		creds=$$(aws configure export-credentials --format env 2>&1) || { \
			echo "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or use an AWS CLI v2 profile ($$creds)" >&2; exit 2; }; \
		eval "$$creds"; \
	fi; \
	if [ -z "$$AWS_REGION$$AWS_DEFAULT_REGION" ]; then export AWS_REGION=$$(aws configure get region); fi;

status doctor cancel:
	@test -n "$(SECRET_ID)" || { echo "usage: make $@ SECRET_ID=<secret name or ARN> [ARGS=--json]" >&2; exit 2; }
	@test -x $(ROTATOR) || $(MAKE) --no-print-directory build >&2
	@$(OPERATOR_ENV) $(ROTATOR) $@ --secret-id "$(SECRET_ID)" $(ARGS)

# Every secret enrolled in the shared stack FLEET, one line each (`rotator status --fleet`).
fleet-status:
	@test -x $(ROTATOR) || $(MAKE) --no-print-directory build >&2
	@$(OPERATOR_ENV) $(ROTATOR) status --fleet "$(FLEET)" $(ARGS)

lint: tools apt-deps python-deps
	$(PYTHON) -m ops.lint

# template.yaml, the deployable template, from template.in.yaml and the host scripts in hosts/
# (ops/template.py). Run it after editing either; a test fails while template.yaml is out of date.
template:
	$(PYTHON) -m ops.template
