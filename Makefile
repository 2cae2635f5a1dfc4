# svc — top-level build.  `make` builds the libraries and the svc program,
# `make check` builds and runs every test, `make demo` runs the end-to-end demo.
# Dependencies are installed on demand (see tools/deps.sh).

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?=
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. $(SAN)
LDFLAGS += $(SAN)

# The version, in one place: the top-level VERSION file (svc --version,
# the man pages, the .deb).
VERSION := $(shell cat VERSION)

PKGS    := zlib
# Debian's mbedTLS 2.28 ships no pkg-config file: link it by name.
# libdebuginfod, libcapstone and libunwind are not linked: elf/debuginfod.c,
# elf/x86.c and hotpatch/unwind.c load them on first use (libdebuginfod
# brings libcurl and ~30 libraries, libcapstone ~77,000 relocations,
# libunwind three libraries and liblzma: loading them dominated short
# commands; docs/performance.md).  Their headers only are needed to build.
DEPLIBS  = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lmbedcrypto -lpthread
TESTLIBS = $(shell pkg-config --libs cunit 2>/dev/null || echo -lcunit) $(shell pkg-config --libs libarchive 2>/dev/null || echo -larchive)

# Dependencies run one way: base < elf, manifest < pending < hotpatch < svc < tools.
LIBDIRS := svc hotpatch pending manifest elf base
LIBS    := $(foreach d,$(LIBDIRS),build/lib$(d).a)

# The manual pages, from the markdown docs (the one source; see tools/md2man.py).
MANPAGES := build/man/svc.8 build/man/svc-package.5 build/man/svc-cc.1

all: deps build/svc build/svc-cc $(MANPAGES)

.SECONDARY:
.PHONY: all deps check unit integration demo bench install clean check-boot check-fleet check-stock fuzz-syntax lint valgrind san \
	check-powerloss fuzz fuzz-build fuzz-deps deb check-fresh

# SVC_NO_DEPS=1: never install packages (a package build: Build-Depends has them)
deps:
	@$(if $(SVC_NO_DEPS),true,sh tools/deps.sh)

build/obj/%.o: %.c $(wildcard */*.h) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

build/obj/tools/svc.o: CFLAGS += -DSVC_VERSION='"$(VERSION)"'
build/obj/tools/svc.o: VERSION

define lib_rule
build/lib$(1).a: $(patsubst %.c,build/obj/%.o,$(wildcard $(1)/*.c))
	@mkdir -p build
	rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach d,$(LIBDIRS),$(eval $(call lib_rule,$(d))))

build/svc: $(patsubst %.c,build/obj/%.o,$(wildcard tools/*.c)) $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEPLIBS)

# the compiler wrapper of `svc build` (linked as cc, gcc, clang by it)
build/svc-cc: build/obj/tools/cc/svc-cc.o $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEPLIBS)

# each page from its markdown source (the docs/ prerequisite)
build/man/svc.8: docs/cli.md
build/man/svc-package.5: docs/format-package.md
build/man/svc-cc.1: docs/svc-cc.md
$(MANPAGES): tools/md2man.py VERSION | deps
	@mkdir -p $(dir $@)
	python3 tools/md2man.py $(VERSION) $(filter docs/%,$^) >$@.tmp && mv $@.tmp $@

UNIT_SRCS := $(wildcard tests/test-*.c)
UNIT_BINS := $(patsubst tests/%.c,build/tests/%,$(UNIT_SRCS))

build/tests/test-%: build/obj/tests/test-%.o build/obj/tests/cunit-main.o build/obj/tests/testlib.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEPLIBS) $(TESTLIBS)

# the power-loss state builder the integration tests drive
build/tests/powerloss: build/obj/tests/powerloss.o build/libbase.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEPLIBS)

unit: $(UNIT_BINS) build/svc
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: build/svc $(MANPAGES) $(UNIT_BINS)
	@set -e; for t in $(sort $(wildcard tests/it-*.sh)); do echo "== $$t"; bash $$t; done

check: all fuzz-syntax
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
	@echo "check: all suites passed"

# Static analysis over the whole tree: cppcheck and clang-tidy, each must be
# silent.  The settings (why each check is off) are in tools/lint.sh;
# suppressions in the code carry their reason where they are.
lint:
	@sh tools/deps.sh lint
	@sh tools/lint.sh

# The CUnit suites under valgrind (memcheck: leaks and invalid accesses are
# errors).  Slow: not part of `make check`.
VALGRIND = valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--trace-children=no --child-silent-after-fork=yes
valgrind: $(UNIT_BINS)
	@sh tools/deps.sh lint
	@set -e; for t in $(UNIT_BINS); do echo "== valgrind $$t"; \
		SVC_UNDER_VALGRIND=1 $(VALGRIND) $$t; done

# Every CUnit suite built again with clang under AddressSanitizer (leaks
# included), UndefinedBehaviorSanitizer and the integer checks
# (-fsanitize=integer: unsigned wrap, lossy implicit conversions, shifts),
# each finding fatal.  Intended modular arithmetic (hashes, CRCs, relocation
# addends that wrap on purpose) carries __attribute__((no_sanitize(...))) on
# its function, with the reason.  Objects under build/san/ (not the
# release build); slow, not part of `make check`.
SAN_CC      ?= clang
SAN_RECOVER ?= -fno-sanitize-recover=all
SAN_FLAGS   := -fsanitize=address,undefined,integer -fsanitize-ignorelist=tests/san-ignore.txt \
	$(SAN_RECOVER) -fno-omit-frame-pointer
SAN_CFLAGS  := -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I. $(SAN_FLAGS)
SAN_LIBOBJS := $(patsubst %.c,build/san/obj/%.o,$(foreach d,$(LIBDIRS),$(wildcard $(d)/*.c)))
SAN_BINS    := $(patsubst tests/%.c,build/san/tests/%,$(UNIT_SRCS))

build/san/obj/%.o: %.c $(wildcard */*.h) $(wildcard tests/*.h) tests/san-ignore.txt | deps
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_CFLAGS) -c -o $@ $<

build/san/tests/test-%: build/san/obj/tests/test-%.o build/san/obj/tests/cunit-main.o \
		build/san/obj/tests/testlib.o $(SAN_LIBOBJS)
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_FLAGS) -o $@ $^ $(DEPLIBS) $(TESTLIBS)

san: all
	@sh tools/deps.sh lint
	@$(MAKE) --no-print-directory $(SAN_BINS)
	@set -e; for t in $(SAN_BINS); do echo "== san $$t"; \
		SVC_BUILD=$(CURDIR)/build ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1 $$t; done
	@echo "san: every unit suite clean under address, undefined and integer sanitizers"

demo: all
	@bash tools/demo.sh

build/bench-hotpatch: tests/bench-hotpatch.c build/obj/tests/testlib.o $(LIBS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< build/obj/tests/testlib.o $(LIBS) $(DEPLIBS)

# Speed figures against baselines of the same run (docs/performance.md): one
# table, build/bench.json.  The redis build is cached under
# /var/cache/svc-bench (or $$SVC_BENCH_CACHE): minutes the first time.
bench: all build/bench-hotpatch
	@sh tools/deps.sh bench
	@bash tests/bench.sh

UNITDIR ?= /lib/systemd/system
DOCDIR  ?= $(PREFIX)/share/doc/svc
MANDIR  ?= $(PREFIX)/share/man
COMPDIR ?= $(PREFIX)/share/bash-completion/completions

install: build/svc build/svc-cc $(MANPAGES)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)/etc/svc/trusted $(DESTDIR)/var/lib/svc \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(COMPDIR)
	install -m 0755 build/svc $(DESTDIR)$(PREFIX)/bin/svc
	install -m 0755 build/svc-cc $(DESTDIR)$(PREFIX)/bin/svc-cc
	install -m 0644 build/man/svc.8 $(DESTDIR)$(MANDIR)/man8/svc.8
	install -m 0644 build/man/svc-package.5 $(DESTDIR)$(MANDIR)/man5/svc-package.5
	install -m 0644 build/man/svc-cc.1 $(DESTDIR)$(MANDIR)/man1/svc-cc.1
	install -m 0644 tools/completion/svc.bash $(DESTDIR)$(COMPDIR)/svc
	# every unit in tools/systemd/ (NAME.in: @BINDIR@ and @DOCDIR@ filled in)
	for u in tools/systemd/*; do n=$$(basename "$$u" .in); \
		sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@DOCDIR@|$(DOCDIR)|g' "$$u" \
			>$(DESTDIR)$(UNITDIR)/$$n && chmod 0644 $(DESTDIR)$(UNITDIR)/$$n || exit 1; done
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/
	install -d $(DESTDIR)/etc/apt/apt.conf.d
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' tools/apt/80svc.in >$(DESTDIR)/etc/apt/apt.conf.d/80svc
	chmod 0644 $(DESTDIR)/etc/apt/apt.conf.d/80svc
	install -d $(DESTDIR)$(UNITDIR)/sysinit.target.wants $(DESTDIR)$(UNITDIR)/timers.target.wants
	ln -sf ../svc-boot.service $(DESTDIR)$(UNITDIR)/sysinit.target.wants/svc-boot.service
	ln -sf ../svc-metrics.timer $(DESTDIR)$(UNITDIR)/timers.target.wants/svc-metrics.timer

# Power loss at every durable step, every disk state a file system could be
# left in (docs/security.md, "Power loss"): minutes, so its own target.
check-powerloss: all build/tests/powerloss
	@bash tests/check-powerloss.sh

# libFuzzer harnesses (tests/fuzz/): the library sources built again with
# clang and the fuzzer, address and undefined-behaviour sanitizers; each
# harness runs FUZZ_SECONDS on seeds made from the test fixtures.
FUZZ_SECONDS ?= 30
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS  := -g -O1 -std=c11 -D_GNU_SOURCE -Wall -Wextra -I. $(FUZZ_SAN)
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz-%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_BINS    := $(patsubst %,build/fuzz/fuzz-%,$(FUZZ_NAMES))
FUZZ_LIBOBJS := $(patsubst %.c,build/fuzz/obj/%.o,$(foreach d,$(LIBDIRS),$(wildcard $(d)/*.c)))

fuzz-deps:
	@sh tools/deps.sh fuzz

build/fuzz/obj/%.o: %.c $(wildcard */*.h) | fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/obj/tests/fuzz/%.o: tests/fuzz/%.c $(wildcard */*.h) $(wildcard tests/fuzz/*.h) | fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/fuzz-%: build/fuzz/obj/tests/fuzz/fuzz-%.o $(FUZZ_LIBOBJS)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(DEPLIBS)

fuzz-build: $(FUZZ_BINS)

# The harnesses compiled (not linked) by the ordinary compiler in `make check`:
# a changed library call breaks the check, not only the slow fuzz target.
fuzz-syntax:
	@for f in tests/fuzz/fuzz-*.c; do $(CC) -fsyntax-only $(CFLAGS) $$f || exit 1; done

fuzz: all fuzz-deps
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_NAMES)

# The Debian package build/svc_$(VERSION)_amd64.deb (dpkg-buildpackage from
# debian/, in a copy of the tree under build/deb/), checked with lintian.
deb:
	@sh tools/deps.sh base deb
	@bash tools/deb.sh

# The README's two commands on a fresh minbase Debian 12 (mmdebstrap root,
# cached under .cache/fresh or $SVC_FRESH_CACHE), and the .deb installed on
# another fresh root.  Slow (network, a full `make check` inside): its own target.
check-fresh: deb
	@sh tools/deps.sh fresh
	@bash tests/fresh/run.sh

# The VM boot test: slow, its own target (cached image under .cache/, which
# `make clean` keeps).
check-boot: all
	@bash tests/boot/run.sh

# The Ansible collection driven by real ansible-playbook runs over a local
# inventory: minutes, so not part of `make check`.
check-fleet: all
	@sh tools/deps.sh fleet
	@bash tests/fleet.sh

# A real Debian security fix live on the stock library (tests/stock/run.sh),
# from nothing but Debian's archive: slow the first time (apt-get source,
# dpkg-buildpackage twice), downloads and the base build kept under
# .cache/stock or $$SVC_STOCK_CACHE for the next run.
check-stock: all
	@sh tools/deps.sh stock deb
	@bash tests/stock/run.sh
	@bash tests/stock/build-deb.sh

clean:
	rm -rf build
