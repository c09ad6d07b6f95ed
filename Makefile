# Convenience wrapper around CMake/CTest; README.md's two commands are `make demo` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
# Seconds each fuzz harness runs: `make fuzz` (the long runs) and `make test` (a smoke run, so a
# regression on a known crashing input or an easy new one fails the build).
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 15

.PHONY: deps build demo test fuzz bench clean

deps:
	./scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	$(BUILD)/tpro demo

test: build
	npm ci --prefix tests/js --no-audit --no-fund
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	FUZZ_JOBS=$(JOBS) FUZZ_SEED=1 ./scripts/fuzz.sh $(FUZZ_SMOKE_SECONDS)

# libFuzzer harnesses (fuzz/) with ASan + UBSan, built with clang++ in build-fuzz/.
fuzz: deps
	FUZZ_JOBS=$(JOBS) ./scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) build-fuzz
