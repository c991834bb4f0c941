# The two commands the README promises: `make run` (demo on a simulated 8-GPU node) and `make test`.
SWIFT ?= swift

.PHONY: run test unit build deps release check-manifests check-images clean fuzz

# The manifest checks' own Python (scripts/install-deps.sh makes it): kubernetes-validate, checkov, hadolint, CRD models.
CHECKS_PYTHON ?= .build-checks/venv/bin/python

deps:
	./scripts/install-deps.sh

# SwiftPM itself leaves TemporaryDirectory.* folders (holding only `.keep-directory`) in the temp folder, about 6 per
# build and 5 per `swift test`; the tests clean up their own. Those made during this run are removed after it.
SWIFTPM_TMP_MARK = .build/.test-started
SWIFTPM_BUILD_MARK = .build/.build-started

build: deps
	@mkdir -p .build && touch $(SWIFTPM_BUILD_MARK)
	$(SWIFT) build; status=$$?; \
	  ./scripts/clean-swiftpm-tmp.sh $(SWIFTPM_BUILD_MARK); \
	  exit $$status

run: build
	./scripts/demo.sh

test: deps check-manifests
	@mkdir -p .build && touch $(SWIFTPM_TMP_MARK)
	promtool check rules dashboards/*.yaml
	cd dashboards && promtool test rules tests/*.yaml
	$(SWIFT) build --build-tests
	python3 scripts/check-fake-nvml.py .build/debug/libFakeNVML.so Tests/Fixtures/nvml --old .build/debug/libFakeNVMLOld.so
	python3 scripts/generate-dashboards.py --check
	python3 scripts/check-dashboards.py .build/debug
	$(SWIFT) test --skip-build; status=$$?; \
	  ./scripts/clean-swiftpm-tmp.sh $(SWIFTPM_TMP_MARK); \
	  exit $$status

# The unit tests alone: everything tagged `endToEnd` (Sources/AccelMetricsTesting/Tags.swift: tests that start a
# product binary, python, umockdev, promtool, curl, kubectl or another peer process) is skipped through its
# `.endToEndEnabled` condition (ACCEL_TESTS=unit): Swift 6.3's `swift test --skip` cannot match tags yet.
unit:
	@mkdir -p .build && touch $(SWIFTPM_TMP_MARK)
	$(SWIFT) build --build-tests
	ACCEL_TESTS=unit SWIFT_BACKTRACE=enable=no $(SWIFT) test --skip-build; status=$$?; \
	  ./scripts/clean-swiftpm-tmp.sh $(SWIFTPM_TMP_MARK); \
	  exit $$status

# libFuzzer with ASan over every parser that takes outside bytes, FUZZ_SECONDS each, over scratch copies of the
# committed corpora (scripts/fuzz.sh; `make test` replays the corpora without a sanitizer). Findings stay in .build-fuzz.
FUZZ_SECONDS ?= 60

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh

# The images' binaries: static Swift stdlib; from the system only libmicrohttpd, libcurl (GnuTLS flavour), GnuTLS,
# libsensors, libyaml, libcrypt and zlib (exporter) and libmicrohttpd, libcurl, GnuTLS, libyaml and zlib (adapter), plus
# libstdc++ and libgcc for the Swift
# runtime. deploy/Containerfile* install exactly these; `make check-images` proves the lists.
release: deps
	./scripts/build-release.sh accel-exporter
	./scripts/build-release.sh accel-metrics-adapter

# Every kustomization under deploy/ (nested ones too) rendered, validated against the Kubernetes and CRD schemas,
# scanned with checkov; the Containerfiles linted (scripts/check-manifests.py).
check-manifests: deps
	$(CHECKS_PYTHON) scripts/check-manifests.py

# The release binaries run in a debootstrapped Debian root holding only the Containerfiles' runtime packages
# (scripts/check-runtime-root.sh; needs root or sudo; slow the first time: release build and two debootstraps).
check-images: deps
	./scripts/check-runtime-root.sh

clean:
	rm -rf .build
