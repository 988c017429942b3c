# Convenience front door; the build itself is meson.
#
#   make demo    build, start dextd serving the emulated edu device, run
#                the demo client against it, stop dextd
#   make check   build with AddressSanitizer + UBSan and run every test
#   make         build only (build/)
#   make valgrind  memcheck: inproc and unit tests, then dextd itself
#   make tsan    the load, race, api and unit suites under ThreadSanitizer
#   make tsa     clang's thread-safety analysis of the whole tree
#                (-Wthread-safety -Werror; a build, no tests)
#   make hostile the hostile suite: attacks on a private dextd (build/)
#   make vm      the vm suite: a QEMU guest with an IOMMU, edu and nvme
#                behind vfio-pci (build/; the rig is built once into
#                $LIBDEXT_VM_CACHE, see tests/vm/README.md)
#   make fuzz    libFuzzer targets, FUZZ_TIME seconds each (build-fuzz/)
#                (see docs/reliability.md)
#
# Each installs what it needs first if it is missing (Debian, root):
# building, scripts/deps.sh build; the test targets, scripts/deps.sh test.

BUILD ?= build
CHECK_BUILD ?= build-check
TSAN_BUILD ?= build-tsan
TSA_BUILD ?= build-tsa
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME ?= 30
VALGRIND = valgrind --error-exitcode=99 --fair-sched=yes --leak-check=full \
	--errors-for-leak-kinds=definite --track-fds=no -q
MESON_OPTS ?=

.PHONY: all deps deps-test demo check valgrind tsan tsa hostile vm fuzz bench plots install clean

all: deps
	@test -f $(BUILD)/build.ninja || meson setup $(BUILD) $(MESON_OPTS)
	ninja -C $(BUILD)

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

demo: all
	scripts/demo.sh $(BUILD)

check: deps-test
	@test -f $(CHECK_BUILD)/build.ninja || \
	    meson setup $(CHECK_BUILD) -Db_sanitize=address,undefined \
	        -Db_lundef=false -Dwerror=true $(MESON_OPTS)
	ninja -C $(CHECK_BUILD)
	meson test -C $(CHECK_BUILD) --print-errorlogs --num-processes 2 \
	    --no-suite vm
	$(MAKE) vm

valgrind: deps-test all
	meson test -C $(BUILD) --suite inproc --suite unit --print-errorlogs \
	    --wrapper '$(VALGRIND)'
	DEXTD_WRAPPER='$(VALGRIND)' meson test -C $(BUILD) --suite unix \
	    --print-errorlogs

# The load and race suites (many clients and threads, several threads on
# one session) under ThreadSanitizer, with the api and unit suites.
tsan: deps-test
	@test -f $(TSAN_BUILD)/build.ninja || \
	    meson setup $(TSAN_BUILD) -Db_sanitize=thread -Db_lundef=false \
	        $(MESON_OPTS)
	ninja -C $(TSAN_BUILD)
	TSAN_OPTIONS='halt_on_error=1 second_deadlock_stack=1' \
	    meson test -C $(TSAN_BUILD) --suite load --suite race --suite api \
	        --suite unit --suite iokit --print-errorlogs

# Lock discipline checked at compile time: clang's -Wthread-safety over
# the annotations of support/locks.h, every warning an error.
tsa: deps-test
	@test -f $(TSA_BUILD)/build.ninja || \
	    CC=clang meson setup $(TSA_BUILD) -Dwerror=true -Dwarning_level=3 \
	        -Dc_args=-Wthread-safety $(MESON_OPTS)
	ninja -C $(TSA_BUILD)

# Attacks on a private dextd over the raw protocol (tests/README.md).
hostile: deps-test all
	meson test -C $(BUILD) --suite hostile --print-errorlogs

# Guests under QEMU, on the plain build: sanitized programs do not belong
# in a 512 MB busybox guest (tests/vm/README.md).
vm: deps-test all
	meson test -C $(BUILD) --suite vm --print-errorlogs --num-processes 2

# libFuzzer targets (clang), FUZZ_TIME seconds each; see docs/reliability.md.
fuzz: deps-test
	@test -f $(FUZZ_BUILD)/build.ninja || \
	    CC=clang meson setup $(FUZZ_BUILD) -Db_sanitize=address,undefined \
	        -Db_lundef=false $(MESON_OPTS)
	ninja -C $(FUZZ_BUILD) fuzzers
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_TIME)

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
	rm -rf $(BUILD) $(CHECK_BUILD) $(TSAN_BUILD) $(TSA_BUILD) $(FUZZ_BUILD)
