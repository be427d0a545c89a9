# twinsan build.  Sources are found by directory, so a new module needs no edit here:
#   src/<layer>/*.c   -> libtwinsan.a (every layer: common, iscsi, scsi, store)
#   src/cmd/<name>.c  -> build/<name>          (one program per file)
#   tests/unit/test_<name>.c -> build/tests/test_<name>   (cmocka)
#   fuzz/fuzz_<name>.c       -> build/fuzz/fuzz_<name>    (libFuzzer, clang)
#
# BUILD=release (default, -O2) or BUILD=san (ASan + UBSan, -O1), each in its own tree.

BUILD   ?= release
O       := build/$(BUILD)
CC      := gcc
PKGS    := liburing libisal openssl jansson inih libsystemd libmicrohttpd
CFLAGS_PKG := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wno-unused-parameter
CFLAGS_COMMON := -std=c17 -D_GNU_SOURCE -g $(WARN) -Isrc $(CFLAGS_PKG) -MMD -MP
ifeq ($(BUILD),san)
CFLAGS_MODE := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_MODE := -fsanitize=address,undefined
else
CFLAGS_MODE := -O2
LDFLAGS_MODE :=
endif
ALL_CFLAGS := $(CFLAGS_COMMON) $(CFLAGS_MODE) $(CFLAGS)

LIB_SRC  := $(wildcard src/common/*.c src/store/*.c src/scsi/*.c src/iscsi/*.c src/ha/*.c src/mgmt/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(O)/%.o)
CMD_SRC  := $(wildcard src/cmd/*.c)
CMDS     := $(CMD_SRC:src/cmd/%.c=$(O)/%)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNITS    := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZERS  := $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)

.PHONY: all units fuzzers check demo fuzz bench clean deps install
all: $(CMDS)
units: $(UNITS)

deps:
	@sh scripts/install-deps.sh

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(O)/libtwinsan.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(O)/%: $(O)/src/cmd/%.o $(O)/libtwinsan.a
	$(CC) $(LDFLAGS_MODE) -o $@ $^ $(LIBS)
# twinctl validate drives targets through libiscsi (src/mgmt/validate_session.c).
$(O)/twinctl: LIBS += -liscsi

$(O)/tests/%: $(O)/tests/unit/%.o $(O)/libtwinsan.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_MODE) -o $@ $^ $(LIBS) -lcmocka

# Fuzzers are built by clang with libFuzzer and both sanitizers.  The library is compiled
# once for all of them (instrumented, without libFuzzer's main), each fuzzer links it.
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -g -O1 -Isrc $(CFLAGS_PKG) -Wall -Wextra -Werror \
               -Wno-unused-parameter -MMD -MP
FUZZ_SAN    := address,undefined
FUZZ_OBJ    := $(LIB_SRC:%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(FUZZ_SAN) -c $< -o $@
build/fuzz/libtwinsan.a: $(FUZZ_OBJ)
	@rm -f $@
	ar rcs $@ $^
build/fuzz/%: fuzz/%.c build/fuzz/libtwinsan.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(FUZZ_SAN) -o $@ $< build/fuzz/libtwinsan.a $(LIBS)
fuzzers: $(FUZZERS)

# The README's two commands.
check: deps
	@tests/run

demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

# Longer fuzzing runs (FUZZ_SECONDS each).
FUZZ_SECONDS ?= 300
fuzz: deps fuzzers
	@for f in $(FUZZERS); do \
	    echo "== $$f ($(FUZZ_SECONDS)s)"; \
	    mkdir -p build/fuzz/corpus/$$(basename $$f); \
	    $$f -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus/$$(basename $$f) fuzz/corpus/$$(basename $$f) || exit 1; \
	done

bench: deps all
	@bench/run

# make install [PREFIX=/usr/local] [DESTDIR=/tmp/inst]; the unit's ExecStart is /usr/local/sbin/twinsand,
# so a different PREFIX needs a drop-in overriding it.
PREFIX ?= /usr/local
install: $(O)/twinsand $(O)/twinctl
	install -D -m 755 $(O)/twinsand $(DESTDIR)$(PREFIX)/sbin/twinsand
	install -D -m 755 $(O)/twinctl $(DESTDIR)$(PREFIX)/sbin/twinctl
	install -D -m 644 man/twinctl.8 $(DESTDIR)$(PREFIX)/share/man/man8/twinctl.8
	install -D -m 644 man/twinsand.8 $(DESTDIR)$(PREFIX)/share/man/man8/twinsand.8
	install -D -m 644 man/twinsan.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/twinsan.conf.5
	install -D -m 644 dist/systemd/twinsand.service $(DESTDIR)/lib/systemd/system/twinsand.service

# ---- fault suite (tests/fault/): the verifying workload, the link fault proxy and the
# driver.  `make fault` runs the long form (CYCLES, default 100); SEED=n replays a run.
FAULT_TOOLS := $(O)/tests/twinload $(O)/tests/faultproxy
# Only the CRC32C and clock helpers of the library: the tool must not break with it.
$(O)/tests/twinload: $(O)/tests/fault/twinload.o $(O)/src/common/crc32c.o $(O)/src/common/util.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_MODE) -o $@ $^ $(LIBS) -liscsi
$(O)/tests/faultproxy: $(O)/tests/fault/faultproxy.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_MODE) -o $@ $^
# The path loss system tests (tests/system/ha-path-loss-*.sh) drive twinload too.
units: $(O)/tests/twinload
CYCLES ?= 100
SEED   ?=
.PHONY: fault fault-tools
fault-tools: $(FAULT_TOOLS)
fault: deps $(O)/twinsand $(FAULT_TOOLS)
	@FAULT_BUILD=$(BUILD) CYCLES=$(CYCLES) SEED=$(SEED) tests/fault/run
-include $(O)/tests/fault/twinload.d $(O)/tests/fault/faultproxy.d
# ---- end of the fault suite block

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CMD_SRC:%.c=$(O)/%.d) $(UNIT_SRC:%.c=$(O)/%.d) $(FUZZ_OBJ:.o=.d)

# ---- the witness (twinwitness): its test client and its installation ------------------
# tests/tools/witness-client.c speaks the node side of the witness protocol for the system
# tests (tests/system/witness-*.sh); built with the unit tests.
WITNESS_CLIENT := $(O)/tests/witness-client
units: $(WITNESS_CLIENT)
$(WITNESS_CLIENT): $(O)/tests/tools/witness-client.o $(O)/libtwinsan.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_MODE) -o $@ $^ $(LIBS)
-include $(O)/tests/tools/witness-client.d
# tests/tools/scsi-steps.c drives several initiators through scripted SCSI commands for
# the system tests of the replicated SCSI state (tests/system/ha-*reserv*.sh ...).
SCSI_STEPS := $(O)/tests/scsi-steps
units: $(SCSI_STEPS)
$(SCSI_STEPS): $(O)/tests/tools/scsi-steps.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_MODE) -o $@ $^ -liscsi
-include $(O)/tests/tools/scsi-steps.d
# tests/tools/caw-counter.c counts with COMPARE AND WRITE through one path, for the system
# tests of its atomicity across the nodes of an HA pair (ha-*compare-and-write*.sh).
CAW_COUNTER := $(O)/tests/caw-counter
units: $(CAW_COUNTER)
$(CAW_COUNTER): $(O)/tests/tools/caw-counter.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_MODE) -o $@ $^ -liscsi
-include $(O)/tests/tools/caw-counter.d
# twinwitness runs on a third host; `make install` installs it with the rest.
.PHONY: install-twinwitness
install: install-twinwitness
install-twinwitness: $(O)/twinwitness
	install -D -m 755 $(O)/twinwitness $(DESTDIR)$(PREFIX)/sbin/twinwitness
	install -D -m 644 man/twinwitness.8 $(DESTDIR)$(PREFIX)/share/man/man8/twinwitness.8
	install -D -m 644 dist/systemd/twinwitness.service $(DESTDIR)/lib/systemd/system/twinwitness.service

# ---- HA benchmark (bench/ha): the HA device against the same daemon without a partner,
# and its resync against a raw TCP copy; results in docs/performance.md.
.PHONY: bench-ha
bench-ha: deps $(O)/twinsand $(O)/tests/twinload
	@TWINSAND=$(O)/twinsand TWINLOAD=$(O)/tests/twinload bench/ha
# ---- end of the HA benchmark block
