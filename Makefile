# Thin wrapper over CMake: `make run`, `make test`, `make bench`.
BUILD      ?= build
TEST_BUILD ?= build-test
CONFIG     ?= supervisor.ini
JOBS       ?= $(shell nproc)

.PHONY: all deps build run test bench clean format

all: build

deps:
	@sh scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/drover -c $(CONFIG)

# Tests run against a sanitizer build (ASan + UBSan) of its own.
test: deps
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DDROVER_SANITIZE=ON -DBUILD_TESTING=ON >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

# Every benchmark, side by side with what people use instead; each prints
# its own table of figures and ratios.
bench: build
	@sh scripts/install-deps supervisor parallel
	python3 bench/run.py --build $(BUILD)
	python3 bench/bench_control.py --build $(BUILD)
	python3 bench/bench_metrics.py --build $(BUILD)
	python3 bench/bench_tasks.py --build $(BUILD)
	python3 bench/bench_console.py --build $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
