# Convenience front door; the build itself is meson.
#
#   make demo    build, start dextd serving the emulated edu device, run
#                the demo client against it, stop dextd
#   make check   build with AddressSanitizer + UBSan and run every test
#   make         build only (build/)
#
# Both install the build tools first if they are missing (Debian, root).

BUILD ?= build
CHECK_BUILD ?= build-check
MESON_OPTS ?=

.PHONY: all deps demo check valgrind bench plots install clean

all: deps
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) $(MESON_OPTS)
	ninja -C $(BUILD)

deps:
	@scripts/deps.sh

demo: all
	scripts/demo.sh $(BUILD)

check: deps
	@test -f $(CHECK_BUILD)/build.ninja || \
	    meson setup $(CHECK_BUILD) -Db_sanitize=address,undefined \
	        -Db_lundef=false -Dwerror=true $(MESON_OPTS)
	ninja -C $(CHECK_BUILD)
	meson test -C $(CHECK_BUILD) --print-errorlogs --num-processes 2

valgrind: all
	meson test -C $(BUILD) --suite inproc --suite unit --print-errorlogs \
	    --wrapper 'valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --track-fds=no -q'

# Every benchmark, one after another; plot data lands in $(BENCH_DATA).
BENCH_DATA ?= $(BUILD)/bench-data
bench: all
	mkdir -p $(BENCH_DATA)
	BENCH_DATA_DIR=$(abspath $(BENCH_DATA)) \
	    meson test -C $(BUILD) --benchmark --verbose

# PNG plots for docs/performance.md from the last `make bench` (gnuplot).
plots:
	@command -v gnuplot >/dev/null || apt-get install -y gnuplot-nox
	gnuplot -e "data='$(BENCH_DATA)'; out='docs'" bench/plots.gp

install: all
	meson install -C $(BUILD)

clean:
	rm -rf $(BUILD) $(CHECK_BUILD)
