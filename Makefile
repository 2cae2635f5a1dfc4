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

PKGS    := zlib libarchive libunwind-ptrace libunwind-generic capstone
# Debian's mbedTLS 2.28 ships no pkg-config file: link it by name.
DEPLIBS  = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lmbedcrypto -lcapstone -ldebuginfod -lpthread
TESTLIBS = $(shell pkg-config --libs cunit 2>/dev/null || echo -lcunit)

# Dependencies run one way: base < elf, manifest < pending < hotpatch < svc < tools.
LIBDIRS := svc hotpatch pending manifest elf base
LIBS    := $(foreach d,$(LIBDIRS),build/lib$(d).a)

# The manual pages, from the markdown docs (the one source; see tools/md2man.py).
MANPAGES := build/man/svc.8 build/man/svc-package.5

all: deps build/svc build/svc-cc $(MANPAGES)

.SECONDARY:
.PHONY: all deps check unit integration demo bench install clean check-boot

deps:
	@sh tools/deps.sh

build/obj/%.o: %.c $(wildcard */*.h) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

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

build/man/svc.8: docs/cli.md tools/md2man.py VERSION | deps
	@mkdir -p $(dir $@)
	python3 tools/md2man.py $(VERSION) $< >$@.tmp && mv $@.tmp $@

build/man/svc-package.5: docs/format-package.md tools/md2man.py VERSION | deps
	@mkdir -p $(dir $@)
	python3 tools/md2man.py $(VERSION) $< >$@.tmp && mv $@.tmp $@

UNIT_SRCS := $(wildcard tests/test-*.c)
UNIT_BINS := $(patsubst tests/%.c,build/tests/%,$(UNIT_SRCS))

build/tests/test-%: build/obj/tests/test-%.o build/obj/tests/cunit-main.o build/obj/tests/testlib.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(DEPLIBS) $(TESTLIBS)

unit: $(UNIT_BINS) build/svc
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

integration: build/svc $(MANPAGES) $(UNIT_BINS)
	@set -e; for t in $(sort $(wildcard tests/it-*.sh)); do echo "== $$t"; bash $$t; done

check: all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration
	@echo "check: all suites passed"

demo: all
	@bash tools/demo.sh

build/bench-hotpatch: tests/bench-hotpatch.c build/obj/tests/testlib.o $(LIBS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< build/obj/tests/testlib.o $(LIBS) $(DEPLIBS)

bench: all build/bench-hotpatch
	@bash tests/bench.sh

UNITDIR ?= /lib/systemd/system
DOCDIR  ?= $(PREFIX)/share/doc/svc
MANDIR  ?= $(PREFIX)/share/man
COMPDIR ?= $(PREFIX)/share/bash-completion/completions

install: build/svc build/svc-cc $(MANPAGES)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)/etc/svc/trusted $(DESTDIR)/var/lib/svc \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(COMPDIR)
	install -m 0755 build/svc $(DESTDIR)$(PREFIX)/bin/svc
	install -m 0755 build/svc-cc $(DESTDIR)$(PREFIX)/bin/svc-cc
	install -m 0644 build/man/svc.8 $(DESTDIR)$(MANDIR)/man8/svc.8
	install -m 0644 build/man/svc-package.5 $(DESTDIR)$(MANDIR)/man5/svc-package.5
	install -m 0644 tools/completion/svc.bash $(DESTDIR)$(COMPDIR)/svc
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
		tools/systemd/svc-boot.service.in >$(DESTDIR)$(UNITDIR)/svc-boot.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/svc-boot.service
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/
	install -d $(DESTDIR)/etc/apt/apt.conf.d
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' tools/apt/80svc.in >$(DESTDIR)/etc/apt/apt.conf.d/80svc
	chmod 0644 $(DESTDIR)/etc/apt/apt.conf.d/80svc
	install -d $(DESTDIR)$(UNITDIR)/sysinit.target.wants
	ln -sf ../svc-boot.service $(DESTDIR)$(UNITDIR)/sysinit.target.wants/svc-boot.service

# The VM boot test: slow, its own target (cached image under .cache/, which
# `make clean` keeps).
check-boot: all
	@bash tests/boot/run.sh

clean:
	rm -rf build
