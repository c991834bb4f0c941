# The two commands the README promises: `make run` (demo on a simulated 8-GPU node) and `make test`.
SWIFT ?= swift

.PHONY: run test build deps release clean

deps:
	./scripts/install-deps.sh

build: deps
	$(SWIFT) build

run: build
	./scripts/demo.sh

test: deps
	for d in deploy/*/kustomization.yaml; do kubectl kustomize "$$(dirname $$d)" > /dev/null || exit 1; done
	promtool check rules dashboards/*.yaml
	cd dashboards && promtool test rules tests/*.yaml
	$(SWIFT) build --build-tests
	python3 scripts/check-fake-nvml.py .build/debug/libFakeNVML.so Tests/Fixtures/nvml --old .build/debug/libFakeNVMLOld.so
	python3 scripts/generate-dashboards.py --check
	python3 scripts/check-dashboards.py .build/debug
	$(SWIFT) test --skip-build

# The images' binaries: static Swift stdlib; from the system only libmicrohttpd (with GnuTLS), libsensors, libyaml,
# libcrypt and zlib (exporter) and libmicrohttpd, libyaml and zlib (adapter).
release: deps
	$(SWIFT) build -c release --static-swift-stdlib --product accel-exporter
	$(SWIFT) build -c release --static-swift-stdlib --product accel-metrics-adapter

clean:
	rm -rf .build
