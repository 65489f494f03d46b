# libminiasync-vdm-dml: the DSA mover library (ABI.md 2.3), its C tests and
# its installation. Included by the main Makefile (`-include mk/*.mk`).
#
# The library is linked from the same static archive as libminiasync.so.0
# and exports, unversioned, exactly the eight names of mk/libminiasync-vdm-dml.map;
# it needs nothing but libc, so programs link it with
# `-lminiasync-vdm-dml -lminiasync` (pkg-config libminiasync-vdm-dml).

DML_SONAME := libminiasync-vdm-dml.so
DML_MAP := mk/libminiasync-vdm-dml.map
DML_LDLIBS := -L$(LIB) -Wl,-rpath,$(CURDIR)/$(LIB) -lminiasync-vdm-dml -lminiasync -lpthread
DML_HEADERS := libminiasync-vdm-dml.h libminiasync-vdm-dml/data_mover_dml.h \
	libminiasync-vdm-dml/data_mover_dml_types.h

ALL_TARGETS += $(LIB)/$(DML_SONAME) $(B)/pkgconfig/libminiasync-vdm-dml.pc

$(LIB)/$(DML_SONAME): $(RUST_A) $(DML_MAP)
	@mkdir -p $(LIB)
	$(CC) -shared -o $@ -Wl,-soname,$(DML_SONAME) \
		-Wl,--version-script,$(DML_MAP) \
		-Wl,--whole-archive $(RUST_A) -Wl,--no-whole-archive \
		-Wl,--gc-sections -Wl,--as-needed -Wl,-z,defs -Wl,-z,relro,-z,now \
		-static-libgcc -lpthread -ldl -lm -lc

# ---- C tests: ctests/dml_*.c, plus the API test as strict C99 and as C++ ----

DML_C_TESTS := $(sort $(wildcard ctests/dml_*.c))
DML_C_TEST_BINS := $(patsubst ctests/%.c,$(B)/ctests/%,$(DML_C_TESTS)) \
	$(B)/ctests/dml_api_c99 $(B)/ctests/dml_api_cxx
EXTRA_C_TEST_BINS += $(DML_C_TEST_BINS)

DML_TEST_DEPS := ctests/test.h $(HEADERS) $(LIB)/$(DML_SONAME) $(LIB)/$(SONAME) \
	$(LIB)/libminiasync.so

$(B)/ctests/dml_%: ctests/dml_%.c $(DML_TEST_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_TEST) -o $@ $< $(DML_LDLIBS)

$(B)/ctests/dml_api_c99: ctests/dml_api.c $(DML_TEST_DEPS)
	@mkdir -p $(@D)
	$(CC) -std=c99 -pedantic -O2 -g -Wall -Wextra -Werror -Iinclude -o $@ $< $(DML_LDLIBS)

$(B)/ctests/dml_api_cxx: ctests/dml_api.c $(DML_TEST_DEPS)
	@mkdir -p $(@D)
	$(CXX) -x c++ -std=c++11 -pedantic -O2 -g -Wall -Wextra -Werror -Iinclude -o $@ $< \
		-x none $(DML_LDLIBS)

# The same tests built with ASan + UBSan (`make check-asan`).
EXTRA_ASAN_BINS += $(patsubst ctests/%.c,$(B)/asan/%,$(DML_C_TESTS))

$(B)/asan/dml_%: ctests/dml_%.c $(DML_TEST_DEPS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_TEST) $(ASAN_FLAGS) -o $@ $< $(DML_LDLIBS)

# Only the DSA mover's C tests.
check-dml: $(DML_C_TEST_BINS)
	sh ctests/run.sh $(DML_C_TEST_BINS)

# ---- install ------------------------------------------------------------------

INSTALL_EXTRA += $(MAKE) --no-print-directory install-dml
UNINSTALL_EXTRA += $(MAKE) --no-print-directory uninstall-dml

install-dml: $(LIB)/$(DML_SONAME)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/libminiasync-vdm-dml
	install -m 755 $(LIB)/$(DML_SONAME) $(DESTDIR)$(LIBDIR)/
	for h in $(DML_HEADERS); do install -m 644 include/$$h $(DESTDIR)$(INCLUDEDIR)/$$h; done
	$(SUBST) pkgconfig/libminiasync-vdm-dml.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libminiasync-vdm-dml.pc

uninstall-dml:
	rm -f $(DESTDIR)$(LIBDIR)/$(DML_SONAME) $(DESTDIR)$(LIBDIR)/pkgconfig/libminiasync-vdm-dml.pc
	for h in $(DML_HEADERS); do rm -f $(DESTDIR)$(INCLUDEDIR)/$$h; done
	-rmdir $(DESTDIR)$(INCLUDEDIR)/libminiasync-vdm-dml

# An installed prefix serves a program built only with
# `pkg-config --cflags --libs libminiasync-vdm-dml`; uninstall removes it all.
CHECK_TARGETS += check-dml-install
DML_PREFIX := $(CURDIR)/$(B)/dml-prefix

check-dml-install: lib-all
	rm -rf $(DML_PREFIX)
	$(MAKE) --no-print-directory install PREFIX=$(DML_PREFIX)
	test -f $(DML_PREFIX)/lib/$(DML_SONAME)
	test -f $(DML_PREFIX)/include/libminiasync-vdm-dml/data_mover_dml.h
	PKG_CONFIG_PATH=$(DML_PREFIX)/lib/pkgconfig pkg-config --libs libminiasync-vdm-dml \
		| grep -q -- '-lminiasync-vdm-dml -lminiasync'
	PKG_CONFIG_PATH=$(DML_PREFIX)/lib/pkgconfig $(CC) -std=gnu99 -Wall -Wextra -Werror \
		-o $(B)/dml-consumer ctests/dml_api.c \
		$$(PKG_CONFIG_PATH=$(DML_PREFIX)/lib/pkgconfig pkg-config --cflags --libs libminiasync-vdm-dml)
	LD_LIBRARY_PATH=$(DML_PREFIX)/lib $(B)/dml-consumer
	$(MAKE) --no-print-directory uninstall PREFIX=$(DML_PREFIX)
	test -z "$$(find $(DML_PREFIX) ! -type d)"
	@echo "ok - libminiasync-vdm-dml installs, links through pkg-config, runs, uninstalls"

.PHONY: check-dml install-dml uninstall-dml check-dml-install
