# The README's commands. Each installs what is missing, then builds.
#   make demo   run a real sweep end to end on the bundled images
#   make test   build and run every test
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
DEMO_DIR ?= demo-output
CTEST_JOBS ?= $(shell nproc)

.PHONY: all deps configure build demo test bench bench-report bench-lease clean

all: build

deps:
	@./deploy/install-deps.sh

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR)

demo: build
	rm -rf $(DEMO_DIR)
	$(BUILD_DIR)/bin/stylesweep local configs/demo.yaml --agents 2 \
	  --db $(DEMO_DIR)/demo.db --artifacts $(DEMO_DIR)/artifacts
	$(BUILD_DIR)/bin/stylesweep report demo --db $(DEMO_DIR)/demo.db --format html -o $(DEMO_DIR)/report.html
	@echo "the runs side by side, and style against content: $(DEMO_DIR)/report.html"

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(CTEST_JOBS) -LE long

# Engine speed against the same loop in PyTorch (Debian's python3-torch), side by side.
bench: configure
	@./deploy/install-deps.sh bench
	cmake --build $(BUILD_DIR) --target engine_bench
	$(BUILD_DIR)/bin/engine_bench $(BENCH_ARGS)

# Report, status and compare queries on a sweep of 10,000 runs and 10 million
# loss rows (the database is built once, about 700 MB, and reused).
bench-report: configure
	cmake --build $(BUILD_DIR) --target report_bench
	$(BUILD_DIR)/bin/report_bench --db $(BUILD_DIR)/report-bench.db $(BENCH_ARGS)

# LeaseRun and Heartbeat latency with 1, 100 and 10,000 finished sweeps
# stored, GetSweep of a 100,000-run sweep, and `stylesweep status` over
# 10,000 sweeps (the databases are built once, about 300 MB, and reused).
bench-lease: configure
	cmake --build $(BUILD_DIR) --target lease_bench stylesweep
	$(BUILD_DIR)/bin/lease_bench --dir $(BUILD_DIR)/lease-bench $(BENCH_ARGS)

clean:
	rm -rf $(BUILD_DIR) $(DEMO_DIR)
