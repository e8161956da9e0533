# cardsync — plain Makefile (see README.md).
#   make            build the four programs
#   make check      build and run every test
#   make memcheck   the same tests under valgrind
#   make asan       the same tests built with ASan + UBSan
#   make run        run the pipeline on the bundled simulators
#   make bench      performance figures
#   make fuzz       each libFuzzer harness for FUZZ_S seconds (default 60)
#   make deb        the Debian package, build/deb/cardsync_VERSION_amd64.deb

# BUILD=asan builds into build/asan and bin/asan with sanitizers.
BUILD   ?= release
ifeq ($(BUILD),asan)
  OUT     := build/asan
  BINDIR  := bin/asan
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPTFLAGS := -O1
else ifeq ($(BUILD),fuzz)
  # libFuzzer harnesses (tests/fuzz): clang, the code under test instrumented
  CC      := clang
  OUT     := build/fuzz
  BINDIR  := bin/fuzz
  SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  OPTFLAGS := -O1
else
  OUT     := build
  BINDIR  := bin
  SANFLAGS :=
  OPTFLAGS := -O2
endif

CC      ?= cc
PKGS_CORE := libcurl libxml-2.0 libzmq libczmq sqlite3 jansson inih libsystemd libidn2
TOOLS   := supervisord valgrind python3 curl sqlite3 systemd-analyze clang \
           dpkg-buildpackage dh lintian man ip

# A missing library means a fresh machine: install what is missing, once, and say so.
# (DEPS_CHECK=no: the package build, which must never install anything.)
ifeq ($(filter clean,$(MAKECMDGOALS))$(filter no,$(DEPS_CHECK)),)
  DEPS_OK := $(shell pkg-config --exists $(PKGS_CORE) libmicrohttpd gnutls \
               && (pkg-config --exists msgpack-c || pkg-config --exists msgpack) \
               && test -r /usr/include/unicase.h \
               && test -r /usr/lib/python3/dist-packages/prometheus_client/parser.py \
               && test -r /usr/lib/python3/dist-packages/selenium/__init__.py && test -x /usr/bin/chromedriver \
               && test -n "$$(find /usr/lib/llvm-*/lib/clang -name 'libclang_rt.fuzzer-x86_64.a' 2>/dev/null)" \
               && command -v $(TOOLS) >/dev/null 2>&1 && echo yes)
  ifneq ($(DEPS_OK),yes)
    $(info make: pkg-config cannot find some libraries (or a test tool is missing); running scripts/install-deps)
    DEPS_RC := $(shell scripts/install-deps 1>&2; echo $$?)
    ifneq ($(DEPS_RC),0)
      $(error scripts/install-deps failed (exit $(DEPS_RC)); install the packages it lists and retry)
    endif
  endif
endif

MSGPACK := $(shell pkg-config --exists msgpack-c && echo msgpack-c || echo msgpack)
PKGS    := $(PKGS_CORE) $(MSGPACK)

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2
# the one version (VERSION): --version, every User-Agent, and later the package
VERSION := $(shell cat VERSION)
CFLAGS  ?=
CFLAGS  += -DCARDSYNC_VERSION='"$(VERSION)"'
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPTFLAGS) -g $(WARN) $(SANFLAGS) -I. \
           $(shell pkg-config --cflags $(PKGS))
# each program records only the libraries it uses (the differ needs no libxml2)
LDFLAGS += $(SANFLAGS) -Wl,--as-needed
LDLIBS  := $(shell pkg-config --libs $(PKGS)) -lunistring -lm

COMMON_SRC := $(wildcard common/*.c)
COMMON_OBJ := $(COMMON_SRC:%.c=$(OUT)/%.o)
LIBCS      := $(OUT)/common/libcardsync.a

PROGRAMS := producer differ pusher auditor
BINS     := $(PROGRAMS:%=$(BINDIR)/cardsync-%)

TEST_SRC   := $(wildcard tests/unit/test_*.c)
TEST_BINS  := $(TEST_SRC:tests/unit/%.c=$(BINDIR)/tests/%)
TEST_LIB   := $(OUT)/tests/unit/harness.o

SIMS       := cardskipper-sim isapi-sim msgdump
SIM_BINS   := $(SIMS:%=$(BINDIR)/%)
SIM_LIB    := $(OUT)/tests/sim/simhttp.o
SIM_CFLAGS := $(shell pkg-config --cflags libmicrohttpd gnutls)
SIM_LIBS   := $(shell pkg-config --libs libmicrohttpd gnutls) -lpthread

.PHONY: all check memcheck asan run bench demo install deb clean tests sims fuzz fuzz-bins
# keep the objects make would otherwise delete as intermediates
.SECONDARY:
all: $(BINS)

sims: $(SIM_BINS)

tests: $(BINS) $(TEST_BINS) $(SIM_BINS)

$(OUT)/%.o: %.c VERSION
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIBCS): $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# Each program: every .c in its directory, linked with the common library.
define program_rule
$(BINDIR)/cardsync-$(1): $(patsubst %.c,$(OUT)/%.o,$(wildcard $(1)/*.c)) $(LIBCS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

# the auditor's `serve` is an HTTP server
MHD_CFLAGS := $(shell pkg-config --cflags libmicrohttpd)
MHD_LIBS   := $(shell pkg-config --libs libmicrohttpd gnutls) -lpthread
$(OUT)/auditor/web.o: CFLAGS += $(MHD_CFLAGS)
$(BINDIR)/cardsync-auditor: LDLIBS += $(MHD_LIBS)

# snprintf truncation is intended in the simulators
$(OUT)/tests/sim/%.o: CFLAGS += $(SIM_CFLAGS) -Wno-format-truncation

$(BINDIR)/cardskipper-sim: $(OUT)/tests/sim/cardskipper_sim.o $(SIM_LIB) $(LIBCS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(SIM_LIBS)

$(BINDIR)/isapi-sim: $(OUT)/tests/sim/isapi_sim.o $(SIM_LIB) $(LIBCS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(SIM_LIBS)

$(BINDIR)/msgdump: $(OUT)/tests/sim/msgdump.o $(LIBCS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# unit tests of a program's modules link those modules too
$(BINDIR)/tests/test_isapi: $(OUT)/pusher/isapi.o
$(BINDIR)/tests/test_export: $(OUT)/producer/export.o
$(BINDIR)/tests/test_store: $(OUT)/differ/store.o
$(BINDIR)/tests/test_audit: $(OUT)/auditor/store.o
$(BINDIR)/tests/test_verdict: $(OUT)/differ/verdict.o
$(BINDIR)/tests/test_web: $(OUT)/auditor/web.o $(OUT)/auditor/ctl.o $(OUT)/auditor/metrics.o $(OUT)/auditor/pages.o
$(BINDIR)/tests/test_web: LDLIBS += $(MHD_LIBS)

$(BINDIR)/tests/%: $(OUT)/tests/unit/%.o $(TEST_LIB) $(LIBCS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBCS) $(LDLIBS)

# the planner is pure: its test links no SQLite, ZeroMQ or clock
$(BINDIR)/tests/test_plan: $(OUT)/tests/unit/test_plan.o $(TEST_LIB) $(LIBCS) $(OUT)/differ/plan.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBCS) -lm
	@if nm -u $@ | grep -E ' (sqlite3_|zmq_|zsock_|zclock_|zsys_|time@|time$$|clock_gettime|gettimeofday)'; then \
	    echo "$@: the planner must not use SQLite, ZeroMQ or the clock"; rm -f $@; exit 1; fi

# The fuzz harnesses: every parser of outside bytes, built with clang and
# libFuzzer into bin/fuzz (make BUILD=fuzz fuzz-bins). make check runs a
# short smoke of each (tests/integration/fuzz_smoke.sh); make fuzz runs each
# for FUZZ_S seconds on a copy of its seed corpus (tests/fuzz/corpus).
FUZZ_TARGETS := email date msg isapi export config
FUZZ_S       ?= 60
$(BINDIR)/fuzz_isapi: $(OUT)/pusher/isapi.o
$(BINDIR)/fuzz_export: $(OUT)/producer/export.o

$(BINDIR)/fuzz_%: $(OUT)/tests/fuzz/fuzz_%.o $(LIBCS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(LIBCS) $(LDLIBS)

fuzz-bins: $(FUZZ_TARGETS:%=$(BINDIR)/fuzz_%)

fuzz:
	@$(MAKE) --no-print-directory BUILD=fuzz fuzz-bins
	@tests/fuzz/run --seconds $(FUZZ_S) $(FUZZ_TARGETS)

check: tests
	@$(MAKE) --no-print-directory BUILD=fuzz fuzz-bins
	@tests/run --bin $(BINDIR)

memcheck:
	@$(MAKE) --no-print-directory tests
	@tests/run --bin $(BINDIR) --memcheck

asan:
	@$(MAKE) --no-print-directory BUILD=asan tests
	@$(MAKE) --no-print-directory BUILD=fuzz fuzz-bins
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=1 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 tests/run --bin bin/asan

run: $(BINS) $(SIM_BINS)
	@scripts/run $(CONFIG)

bench: $(BINS) $(SIM_BINS)
	@scripts/bench

demo: $(BINS) $(SIM_BINS)
	@scripts/demo

# make install [PREFIX=/usr/local] [DESTDIR=] [UNITDIR=/etc/systemd/system]
# [CONFIG_NAME=cardsync.ini.example]: the programs, the systemd units (pointing
# at PREFIX), the config (the package installs it as cardsync.ini, a
# conffile), each program's secrets template, the manual (with VERSION) and
# bash completion; see README, "Install".
PREFIX      ?= /usr/local
UNITDIR     ?= /etc/systemd/system
CONFIG_NAME ?= cardsync.ini.example
COMPLETIONS := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
install: $(BINS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)/etc/cardsync \
	    $(DESTDIR)$(PREFIX)/share/cardsync/secrets $(COMPLETIONS) \
	    $(DESTDIR)$(PREFIX)/share/man/man7 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	for u in scripts/systemd/*; do \
	    sed 's#/usr/local/bin/#$(PREFIX)/bin/#g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
	    chmod 644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	install -m 644 cardsync.ini.example $(DESTDIR)/etc/cardsync/$(CONFIG_NAME)
	install -m 644 scripts/secrets/*.env $(DESTDIR)$(PREFIX)/share/cardsync/secrets/
	for m in man/cardsync.7 man/cardsync-*.8; do \
	    d=$(DESTDIR)$(PREFIX)/share/man/man$${m##*.}/$$(basename $$m); \
	    sed 's/^\.Os cardsync$$/.Os cardsync $(VERSION)/' $$m > $$d && chmod 644 $$d; done
	install -m 644 scripts/bash-completion/cardsync $(COMPLETIONS)/cardsync-auditor
	for p in producer differ pusher; do ln -sf cardsync-auditor $(COMPLETIONS)/cardsync-$$p; done

# the package, from an exported copy of the tree (scripts/make-deb); make deb
# VERSION=x.y.z builds another version (the upgrade test does)
deb:
	@scripts/make-deb $(VERSION)

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' -type f 2>/dev/null)
