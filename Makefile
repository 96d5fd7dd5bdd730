# netlua - build, test, install.
#
#   make            build build/netlua/core.so
#   make demo       install missing packages, build, run examples/tour.lua
#   make test       install missing packages, build, run the spec suite
#                   on Lua 5.4 and on LuaJIT
#   make test-all   the same, then on Lua 5.1, 5.2 and 5.3 too (CI)
#   make asan       the spec suite against an ASan+UBSan build
#   make valgrind   the spec suite under valgrind memcheck
#   make bench      install what the benches need (lftp too), build the
#                   C reference programs in bench/c; then run a bench/*.lua
#                   as its header says (bench/mirror.lua: netlua vs lftp)
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS each
#                   (or FUZZ_RUNS executions each)
#   make check-warnings  every C file with -Wall -Wextra as errors
#   make install    PREFIX=/usr/local DESTDIR= (luarocks uses this too)
#   make uninstall  the same variables: removes what install put there
#   make rock       build/netlua-scm-1.src.rock (luarocks install takes it)

# LUA picks the Lua the module is built for (and the specs run on):
# lua5.1, lua5.2, lua5.3, lua5.4 (default) or luajit.  Each has its own
# build folder: build (5.4), build-5.1 ... build-5.3, build-jit.
LUA        ?= lua5.4
LUA_V      := $(if $(findstring luajit,$(LUA)),jit,$(patsubst lua%,%,$(notdir $(LUA))))
LUA_ABI    := $(if $(filter jit,$(LUA_V)),5.1,$(LUA_V))
ifeq ($(LUA_V),jit)
LUA_INCDIR ?= $(shell pkg-config --variable=includedir luajit 2>/dev/null || echo /usr/include/luajit-2.1)
else
LUA_INCDIR ?= $(shell pkg-config --variable=includedir lua$(LUA_V) 2>/dev/null || echo /usr/include)/lua$(LUA_V)
endif
BUILD      ?= $(if $(filter 5.4,$(LUA_V)),build,build-$(LUA_V))
CURL_INCDIR ?= $(shell pkg-config --variable=includedir libcurl 2>/dev/null || echo /usr/include)
CURL_LIBDIR ?= $(shell pkg-config --variable=libdir libcurl 2>/dev/null || echo /usr/lib)
SSH_INCDIR ?= $(shell pkg-config --variable=includedir libssh 2>/dev/null || echo /usr/include)
SSH_LIBDIR ?= $(shell pkg-config --variable=libdir libssh 2>/dev/null || echo /usr/lib)
CC         ?= cc
CFLAGS     ?= -O2 -g
LIBFLAG    ?= -shared
WARN       = -Wall -Wextra
ALL_CFLAGS = $(CFLAGS) -pthread -fPIC -fvisibility=hidden -std=c99 $(WARN) -I$(LUA_INCDIR) -I$(CURL_INCDIR) -I$(SSH_INCDIR)
LIBS       = -L$(CURL_LIBDIR) -lcurl -L$(SSH_LIBDIR) -lssh -pthread -ldl

PREFIX     ?= /usr/local
LUA_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_ABI)
LUA_SHAREDIR ?= $(PREFIX)/share/lua/$(LUA_ABI)
# luarocks passes these two
INST_LIBDIR ?= $(DESTDIR)$(LUA_LIBDIR)
INST_LUADIR ?= $(DESTDIR)$(LUA_SHAREDIR)

SRC  = $(wildcard csrc/*.c)
HDR  = $(wildcard csrc/*.h)
OBJ  = $(SRC:csrc/%.c=$(BUILD)/obj/%.o)
AOBJ = $(SRC:csrc/%.c=build-asan/obj/%.o)
LUAFILES = $(wildcard lua/netlua/*.lua)

SAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

FUZZ_SECONDS ?= 60
FUZZ_RUNS ?=

.PHONY: all deps demo test test-all asan valgrind bench fuzz install uninstall rock clean check-warnings

all: $(BUILD)/netlua/core.so

# every C file compiled with the warnings as errors (no objects kept)
check-warnings:
	@for f in csrc/*.c; do $(CC) $(ALL_CFLAGS) -Werror -c -o /dev/null $$f || exit 1; done
	@echo "csrc: no warnings with $(WARN) ($(LUA))"

$(BUILD)/obj/%.o: csrc/%.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/netlua/core.so: $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $(OBJ) $(LIBS)

build-asan/obj/%.o: csrc/%.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -pthread -fPIC -fvisibility=hidden -std=c99 $(WARN) -I$(LUA_INCDIR) -I$(CURL_INCDIR) -I$(SSH_INCDIR) -c -o $@ $<

build-asan/netlua/core.so: $(AOBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -shared -o $@ $(AOBJ) $(LIBS)

deps:
	@sh scripts/deps.sh test

demo:
	@sh scripts/deps.sh demo
	@$(MAKE) --no-print-directory all
	@sh scripts/netns.sh $(LUA) examples/tour.lua

# the suite on Lua 5.4, then on LuaJIT; test-all (CI) adds 5.1 to 5.3
test:
	@sh scripts/deps.sh test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory all LUA=luajit
	@sh scripts/netns.sh sh scripts/run-specs.sh build
	@NETLUA_LUA=luajit sh scripts/netns.sh sh scripts/run-specs.sh build-jit

test-all: test
	@sh scripts/deps.sh test-all
	@for v in 5.1 5.2 5.3; do $(MAKE) --no-print-directory all LUA=lua$$v || exit 1; done
	@for v in 5.1 5.2 5.3; do \
	  NETLUA_LUA=lua$$v sh scripts/netns.sh sh scripts/run-specs.sh build-$$v || exit 1; done

asan:
	@sh scripts/deps.sh test
	@$(MAKE) --no-print-directory build-asan/netlua/core.so CC=gcc
	@sh scripts/netns.sh sh scripts/run-specs.sh build-asan

valgrind:
	@sh scripts/deps.sh valgrind
	@$(MAKE) --no-print-directory all
	@NETLUA_VALGRIND=1 sh scripts/netns.sh sh scripts/run-specs.sh build

bench:
	@sh scripts/deps.sh bench
	@$(MAKE) --no-print-directory all
	@mkdir -p build/bench
	@for f in bench/c/*.c; do [ -f "$$f" ] || continue; \
	  n=$$(basename $$f .c); echo "cc $$f -> build/bench/$$n"; \
	  $(CC) -O2 -Wall -Wextra -o build/bench/$$n $$f || exit 1; done
	@for f in bench/c/lua/*.c; do [ -f "$$f" ] || continue; \
	  n=$$(basename $$f .c); echo "cc $$f -> $(BUILD)/bench/$$n.so ($(LUA))"; \
	  mkdir -p $(BUILD)/bench; \
	  $(CC) -O2 -Wall -Wextra -fPIC $(LIBFLAG) -I$(LUA_INCDIR) \
	    -o $(BUILD)/bench/$$n.so $$f || exit 1; done

fuzz:
	@sh scripts/deps.sh fuzz
	@FUZZ_RUNS=$(FUZZ_RUNS) sh scripts/fuzz.sh $(FUZZ_SECONDS)

install: all
	install -d $(INST_LIBDIR)/netlua $(INST_LUADIR)/netlua
	install -m 0755 $(BUILD)/netlua/core.so $(INST_LIBDIR)/netlua/core.so
	install -m 0644 $(LUAFILES) $(INST_LUADIR)/netlua/

rock:
	@sh scripts/rock.sh

# undoes install: the files it put there, then its folders if now empty
uninstall:
	rm -f $(INST_LIBDIR)/netlua/core.so
	rm -f $(LUAFILES:lua/netlua/%=$(INST_LUADIR)/netlua/%)
	-rmdir $(INST_LIBDIR)/netlua $(INST_LUADIR)/netlua 2>/dev/null

clean:
	rm -rf build build-asan build-5.1 build-5.2 build-5.3 build-jit
