SHELL := /bin/bash
# miniasync-rs build, test and install.
#
#   make                 libraries (.so, .a) and pkg-config/CMake files in build/
#   make check           every test: Rust, headers, ABI, symbols, C suite,
#                        install + pkg-config, libpmem2 consumer
#   make check-valgrind  the C suite under valgrind memcheck
#   make check-asan      the C suite built with ASan + UBSan
#   make check-msrv      Rust build + tests on the MSRV (Cargo.toml rust-version)
#   make bench           benchmark table (ratios against plain memcpy)
#   make demo            build and run examples/demo.c
#   make install PREFIX=/usr/local DESTDIR=   /  make uninstall
#   make headers         regenerate the cbindgen type headers
#   make abi             regenerate the ABI pins and probe list from abi/layout.tsv
#   make clean

PREFIX ?= /usr/local
DESTDIR ?=
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man

CARGO ?= cargo
CC ?= cc
CXX ?= c++
CBINDGEN ?= $(shell command -v cbindgen 2>/dev/null || echo $(CURDIR)/.tools/bin/cbindgen)
CBINDGEN_VERSION = 0.29.4

B := build
LIB := $(B)/lib
RUST_A := target/release/libminiasync.a
SONAME := libminiasync.so.0
# The product version and the MSRV are written once, in Cargo.toml.
VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
MSRV := $(shell sed -n 's/^rust-version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)

CFLAGS_TEST ?= -O2 -g -std=gnu99 -Wall -Wextra -Werror -Iinclude
LDLIBS_TEST ?= -L$(LIB) -Wl,-rpath,$(CURDIR)/$(LIB) -lminiasync -lpthread

RUST_SRC := $(shell find src -name '*.rs') Cargo.toml $(wildcard Cargo.lock)
HEADERS := $(shell find include -name '*.h')
GEN_HEADERS := include/libminiasync/future_types.h include/libminiasync/vdm_types.h \
	include/libminiasync/data_mover_threads_types.h \
	include/libminiasync/data_mover_stats_types.h \
	include/libminiasync-vdm-dml/data_mover_dml_types.h

# Extra targets contributed by mk/*.mk (e.g. the DSA mover library).
ALL_TARGETS := $(LIB)/$(SONAME) $(LIB)/libminiasync.so $(LIB)/libminiasync.a \
	$(B)/pkgconfig/libminiasync.pc $(B)/cmake/libminiasync-config.cmake \
	$(B)/cmake/libminiasync-config-version.cmake
CHECK_TARGETS := check-rust check-headers check-abi check-symbols check-c \
	check-install check-pmem2 check-man

.PHONY: check-cross
.PHONY: all check check-man check-rust check-headers check-abi check-symbols check-c \
	check-install check-pmem2 check-valgrind check-asan check-lint check-msrv bench demo \
	install uninstall headers abi clean

all: lib-all

-include $(sort $(wildcard mk/*.mk))

lib-all: $(ALL_TARGETS)

# ---- libraries ------------------------------------------------------------

$(RUST_A): $(RUST_SRC)
	$(CARGO) build --locked --release --lib

$(LIB)/libminiasync.a: $(RUST_A)
	@mkdir -p $(LIB)
	cp $< $@

$(LIB)/$(SONAME): $(RUST_A) src/libminiasync.map
	@mkdir -p $(LIB)
	$(CC) -shared -o $@ -Wl,-soname,$(SONAME) \
		-Wl,--version-script,src/libminiasync.map \
		-Wl,--whole-archive $(RUST_A) -Wl,--no-whole-archive \
		-Wl,--gc-sections -Wl,--as-needed -Wl,-z,defs -Wl,-z,relro,-z,now \
		-static-libgcc -lpthread -ldl -lm -lc

$(LIB)/libminiasync.so: $(LIB)/$(SONAME)
	ln -sf $(SONAME) $@

$(B)/pkgconfig/%.pc: pkgconfig/%.pc.in Cargo.toml
	@mkdir -p $(@D)
	$(SUBST) $< > $@

# Generated files that carry install paths (pkg-config, CMake).
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

$(B)/cmake/%.cmake: cmake/%.cmake.in Cargo.toml
	@mkdir -p $(@D)
	$(SUBST) $< > $@

# ---- generated headers ------------------------------------------------------

$(CBINDGEN):
	$(CARGO) install --locked --root $(CURDIR)/.tools cbindgen --version $(CBINDGEN_VERSION)

# Writes the five type headers into $(HDR_OUT) (default: include/).
# cbindgen takes the include guard from its configuration, which the headers
# share: each run gets the config files $(1) with its own guard (the header's
# name in capitals, e.g. FUTURE_TYPES_H) in front; $(2) header, $(3) input.
HDR_OUT ?= include
CBINDGEN_RUN = g=$$(basename $(2) | tr a-z. A-Z_); \
	{ echo "include_guard = \"$$g\""; cat $(1); } > $(B)/cbindgen-$$g.toml && \
	$(CBINDGEN) -q --config $(B)/cbindgen-$$g.toml -o $(HDR_OUT)/$(2) $(3)
gen-headers-into: $(CBINDGEN)
	@mkdir -p $(B) $(HDR_OUT)/libminiasync $(HDR_OUT)/libminiasync-vdm-dml
	$(call CBINDGEN_RUN,cbindgen.toml,libminiasync/future_types.h,src/abi/future_types.rs)
	$(call CBINDGEN_RUN,cbindgen.toml cbindgen-vdm.toml,libminiasync/vdm_types.h,src/abi/vdm_types.rs)
	$(call CBINDGEN_RUN,cbindgen.toml,libminiasync/data_mover_threads_types.h,src/abi/threads_types.rs)
	$(call CBINDGEN_RUN,cbindgen.toml,libminiasync/data_mover_stats_types.h,src/abi/stats_types.rs)
	$(call CBINDGEN_RUN,cbindgen.toml,libminiasync-vdm-dml/data_mover_dml_types.h,src/abi/dml_types.rs)

headers:
	$(MAKE) gen-headers-into HDR_OUT=include

# ---- tests ------------------------------------------------------------------

check: $(CHECK_TARGETS)
	@echo "make check: all test groups passed"

# Rust tests; one that lacks what it needs (e.g. a system header) prints
# "SKIP: <reason>" and returns, so the output is not captured and the skips
# are counted (the Rust harness has no skip status).
check-rust: $(B)/.dirstamp
	$(CARGO) test --locked --release -- --nocapture 2>&1 | tee $(B)/cargo-test.log; \
		test $${PIPESTATUS[0]} -eq 0
	@echo "Rust tests: $$(grep -c 'SKIP:' $(B)/cargo-test.log) reported SKIP"

# The crate builds and its Rust tests pass on the declared MSRV (Cargo.toml
# rust-version; install it with `rustup toolchain install $(MSRV) --profile minimal`).
check-msrv: $(B)/.dirstamp
	$(CARGO) +$(MSRV) test --locked --release --target-dir $(B)/msrv-target

# The crate (tests included) type-checks for other architectures: only
# src/arch/ knows which one it is on: aarch64 has its own module, riscv64
# gets the portable fallback (needs `rustup target add`; no cross linker).
CROSS_TARGETS ?= aarch64-unknown-linux-gnu riscv64gc-unknown-linux-gnu
check-cross:
	@for t in $(CROSS_TARGETS); do \
		echo "$(CARGO) check --locked --all-targets --target $$t"; \
		$(CARGO) check --locked --all-targets --target $$t || exit 1; \
	done

check-lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Generated headers must match a fresh cbindgen run; every public header
# must compile alone as C99 and as C++11.
check-headers: $(B)/.dirstamp
	rm -rf $(B)/hdr && $(MAKE) --no-print-directory gen-headers-into HDR_OUT=$(B)/hdr
	@for h in $(GEN_HEADERS); do \
		diff -u $$h $(B)/hdr/$${h#include/} || { echo "$$h is stale: run 'make headers'"; exit 1; }; \
	done
	@for h in libminiasync.h libminiasync/future.h libminiasync/vdm.h libminiasync/runtime.h \
		libminiasync/data_mover_sync.h libminiasync/data_mover_threads.h \
		libminiasync/data_mover_stats.h \
		libminiasync-vdm-dml.h libminiasync-vdm-dml/data_mover_dml.h; do \
		printf '#include <%s>\n' $$h > $(B)/hdr/one.c; cp $(B)/hdr/one.c $(B)/hdr/one.cpp; \
		$(CC) -std=c99 -Wall -Wextra -pedantic -Werror -Iinclude -c $(B)/hdr/one.c -o /dev/null || exit 1; \
		$(CXX) -std=c++11 -Wall -Wextra -pedantic -Werror -Iinclude -c $(B)/hdr/one.cpp -o /dev/null || exit 1; \
		echo "ok header $$h (C99, C++11)"; \
	done

$(B)/.dirstamp:
	@mkdir -p $(B) && touch $@

# ABI facts: abi/layout.tsv is the one table; tools/abi.py generates the
# Rust pins (src/abi/layout.rs) and the C probe's list (ctests/abi_facts.h).
ABI_GEN := src/abi/layout.rs ctests/abi_facts.h

abi:
	python3 tools/abi.py .

# The generated files match the table, and the layout our headers give C
# equals it (the Rust side is pinned at compile time by src/abi/layout.rs).
check-abi: $(B)/.dirstamp
	rm -rf $(B)/abi-gen && python3 tools/abi.py $(B)/abi-gen
	@for f in $(ABI_GEN); do \
		diff -u $$f $(B)/abi-gen/$$f || { echo "$$f is stale: run 'make abi'"; exit 1; }; \
	done
	$(CC) -std=gnu99 -Wall -Wextra -Werror -Iinclude -o $(B)/abi_probe ctests/abi_probe.c
	$(B)/abi_probe

check-symbols: lib-all
	python3 tests/check_symbols.py $(LIB)

C_TESTS := $(sort $(wildcard ctests/test_*.c))
C_TEST_BINS := $(patsubst ctests/%.c,$(B)/ctests/%,$(C_TESTS))

$(B)/ctests/%: ctests/%.c ctests/test.h $(HEADERS) $(LIB)/$(SONAME) $(LIB)/libminiasync.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_TEST) -o $@ $< $(LDLIBS_TEST)

check-c: $(C_TEST_BINS) $(EXTRA_C_TEST_BINS)
	sh ctests/run.sh $(C_TEST_BINS) $(EXTRA_C_TEST_BINS)

# --fair-sched=yes: valgrind runs one thread at a time, and its default lock
# lets a thread that polls a future in a loop starve the emulated device's
# threads until the mover's device timeout fires.
check-valgrind: $(C_TEST_BINS) $(EXTRA_C_TEST_BINS)
	RUNNER="valgrind --tool=memcheck --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --quiet" \
		MINIASYNC_TEST_SCALE=10 sh ctests/run.sh $(C_TEST_BINS) $(EXTRA_C_TEST_BINS)

ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_BINS := $(patsubst ctests/%.c,$(B)/asan/%,$(C_TESTS)) $(EXTRA_ASAN_BINS)

$(B)/asan/test_%: ctests/test_%.c ctests/test.h $(HEADERS) $(LIB)/$(SONAME) $(LIB)/libminiasync.so
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_TEST) $(ASAN_FLAGS) -o $@ $< $(LDLIBS_TEST)

check-asan: $(ASAN_BINS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		sh ctests/run.sh $(ASAN_BINS)

# Install into a scratch prefix and build a program through pkg-config.
check-install: lib-all
	rm -rf $(B)/prefix
	$(MAKE) --no-print-directory install PREFIX=$(CURDIR)/$(B)/prefix
	NATIVE_STATIC_LIBS="$$(cat $(B)/native-static-libs)" \
		sh tests/check_install.sh $(CURDIR)/$(B)/prefix

check-install: $(B)/native-static-libs

# What rustc says a static link of the archive needs (compared with the
# Libs.private of libminiasync.pc); its own target dir, so the main build
# is not rebuilt with different flags.
$(B)/native-static-libs: $(RUST_SRC)
	@mkdir -p $(B)
	$(CARGO) rustc --locked --release --lib --target-dir $(B)/nsl-target \
		-- --print native-static-libs 2>&1 | tee $(B)/nsl.log | \
		sed -n 's/.*native-static-libs: //p' > $@.tmp
	test -s $@.tmp || { cat $(B)/nsl.log; rm -f $@.tmp; exit 1; }
	mv $@.tmp $@

check-pmem2: lib-all
	sh tests/check_pmem2.sh

check-man:
	sh tests/check_man.sh

# ---- Miri (src/arch portable fallback) --------------------------------------
#   make check-miri   the core's pure-Rust unit tests under Miri (nightly,
#                     `rustup +nightly component add miri rust-src`)

CARGO_NIGHTLY ?= $(CARGO) +nightly
# Tests that need no x86 feature and no syscall or FFI Miri cannot model.
MIRI_TESTS := arch:: mover::tests:: mover::cpu:: mover::threads:: sync:: runtime:: ffi:: \
	mover::dsa::tests::progress_tests mover::dsa::tests::credits_tests \
	mover::dsa::engine::batch mover::dsa::tests::hw_tests
# Skipped under Miri: the two concurrent engine stress tests take minutes
# each when interpreted, and the event-count contention test's 20 s bound
# is a wall-clock one the interpreter exceeds.
MIRI_SKIP := --skip concurrent_acquire_release_keeps_the_bound \
	--skip concurrent_appends_lose_nothing --skip no_lost_wake_under_contention
# Permissive provenance: tests build out-of-range pointers from integers
# on purpose (range checks), and the pools use exposed provenance.
MIRIFLAGS ?= -Zmiri-permissive-provenance

.PHONY: check-miri
check-miri:
	MIRIFLAGS="$(MIRIFLAGS)" $(CARGO_NIGHTLY) miri test --locked --lib -- $(MIRI_TESTS) $(MIRI_SKIP)

bench: lib-all
	@mkdir -p $(B)
	$(CC) -O2 -std=gnu99 -Wall -Wextra -Iinclude -o $(B)/bench bench/bench.c -L$(LIB) -lminiasync-vdm-dml $(LDLIBS_TEST) $(BENCH_LDLIBS)
	$(B)/bench

demo: lib-all
	@mkdir -p $(B)
	$(CC) -O2 -std=gnu99 -Wall -Wextra -Werror -Iinclude -o $(B)/demo examples/demo.c $(LDLIBS_TEST)
	$(B)/demo

# ---- install ----------------------------------------------------------------

INSTALL_HEADERS := libminiasync.h libminiasync/future.h libminiasync/future_types.h \
	libminiasync/vdm.h libminiasync/vdm_types.h libminiasync/runtime.h \
	libminiasync/data_mover_sync.h libminiasync/data_mover_threads.h \
	libminiasync/data_mover_threads_types.h libminiasync/data_mover_stats.h \
	libminiasync/data_mover_stats_types.h

install: lib-all $(INSTALL_EXTRA_DEPS)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/libminiasync \
		$(DESTDIR)$(LIBDIR)/libminiasync/cmake $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man7
	install -m 755 $(LIB)/$(SONAME) $(DESTDIR)$(LIBDIR)/
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libminiasync.so
	install -m 644 $(LIB)/libminiasync.a $(DESTDIR)$(LIBDIR)/
	for h in $(INSTALL_HEADERS); do install -m 644 include/$$h $(DESTDIR)$(INCLUDEDIR)/$$h; done
	$(SUBST) pkgconfig/libminiasync.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libminiasync.pc
	$(SUBST) cmake/libminiasync-config.cmake.in > $(DESTDIR)$(LIBDIR)/libminiasync/cmake/libminiasync-config.cmake
	$(SUBST) cmake/libminiasync-config-version.cmake.in > $(DESTDIR)$(LIBDIR)/libminiasync/cmake/libminiasync-config-version.cmake
	for m in $(wildcard man/*.3); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man3/; done
	for m in $(wildcard man/*.7); do install -m 644 $$m $(DESTDIR)$(MANDIR)/man7/; done
	$(INSTALL_EXTRA)

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libminiasync.so $(DESTDIR)$(LIBDIR)/libminiasync.a
	for h in $(INSTALL_HEADERS); do rm -f $(DESTDIR)$(INCLUDEDIR)/$$h; done
	-rmdir $(DESTDIR)$(INCLUDEDIR)/libminiasync
	rm -f $(DESTDIR)$(LIBDIR)/pkgconfig/libminiasync.pc
	rm -rf $(DESTDIR)$(LIBDIR)/libminiasync
	for m in $(notdir $(wildcard man/*.3)); do rm -f $(DESTDIR)$(MANDIR)/man3/$$m; done
	for m in $(notdir $(wildcard man/*.7)); do rm -f $(DESTDIR)$(MANDIR)/man7/$$m; done
	$(UNINSTALL_EXTRA)

clean:
	rm -rf $(B)
	$(CARGO) clean
