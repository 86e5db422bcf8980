# Makefile for the tcc extension (PGXS)

MODULE_big = tcc
OBJS = \
	src/api.o \
	src/backoff.o \
	src/barrier.o \
	src/calls.o \
	src/cancel.o \
	src/coordinator.o \
	src/counting.o \
	src/durable.o \
	src/gid.o \
	src/http.o \
	src/intent.o \
	src/notice.o \
	src/ops.o \
	src/pause.o \
	src/protocol.o \
	src/purge.o \
	src/request.o \
	src/schedule.o \
	src/schedulephase.o \
	src/settle.o \
	src/settled.o \
	src/shmem.o \
	src/status.o \
	src/store.o \
	src/tcc.o \
	src/tries.o \
	src/util.o \
	src/validate.o \
	src/worker.o \
	src/workerproc.o

EXTENSION = tcc
DATA = tcc--1.0.sql tcc--1.0--1.1.sql tcc--1.1--1.2.sql
DATA_built = tcc--1.1.sql tcc--1.2.sql
PGFILEDESC = "tcc - Try-Confirm-Cancel distributed transactions"
# the dependency files the compilers write (below)
EXTRA_CLEAN = $(OBJS:.o=.d) $(OBJS:.o=.bc.d)

# make installcheck: the regression tests in sql/, against a running server
# that includes test/regress.conf and holds the databases tcc_test (with the
# extension tcc and the test participant's schema tp) and tcc_other;
# test/run.sh regress sets all of that up.  --temp-config is for a temporary
# instance started by pg_regress itself.
REGRESS = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --use-existing --temp-config=test/regress.conf

PG_CPPFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wno-missing-field-initializers -Wno-sign-compare $(shell curl-config --cflags)
SHLIB_LINK = $(shell curl-config --libs)

PG_CONFIG ?= $(shell test -x /usr/lib/postgresql/15/bin/pg_config && \
	echo /usr/lib/postgresql/15/bin/pg_config || echo pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# durable.c reads WalSndCtl->sync_standbys_status, which PostgreSQL 15 has
# from 15.13 on (the fix of a race between a server's start and its first
# synchronous commits): refuse an older server before anything is compiled.
TCC_PG_VERSION := $(shell $(PG_CONFIG) --version | \
	sed -E 's/^PostgreSQL ([0-9]+)\.([0-9]+).*/\1.\2/')
ifneq ($(shell echo '$(TCC_PG_VERSION)' | awk -F. '$$1 == 15 && $$2 < 13'),)
$(error tcc needs PostgreSQL 15.13 or later, and $(PG_CONFIG) is $(TCC_PG_VERSION): durable.c reads WalSndCtl->sync_standbys_status, added in 15.13)
endif

# after PGXS, which sets its own default (make installcheck's database)
CONTRIB_TESTDB = tcc_test

# Each object depends on the headers it includes, directly or through
# another header (the layouts of shared memory and of the requests are in
# them): the compiler writes those dependencies into a .d file next to the
# object as it builds it (src/x.d; src/x.bc.d for the JIT's bitcode of
# the same file), and they are read back here.
override CPPFLAGS += -MMD -MP
COMPILE.c.bc += -MF $@.d
-include $(OBJS:.o=.d) $(OBJS:.o=.bc.d)

# A new install runs tcc--1.1.sql: the frozen 1.0 script followed by the
# upgrade to 1.1, so fresh and updated databases cannot drift apart.
tcc--1.1.sql: tcc--1.0.sql tcc--1.0--1.1.sql
	{ echo '/* tcc--1.1.sql: generated from tcc--1.0.sql and tcc--1.0--1.1.sql */'; \
	  echo '\\echo Use "CREATE EXTENSION tcc" to load this file. \\quit'; \
	  sed '/^\\echo /d' tcc--1.0.sql; \
	  sed '/^\\echo /d' tcc--1.0--1.1.sql; } > $@

# And tcc--1.2.sql: that script followed by the upgrade to 1.2.
tcc--1.2.sql: tcc--1.1.sql tcc--1.1--1.2.sql
	{ echo '/* tcc--1.2.sql: generated from tcc--1.0.sql, tcc--1.0--1.1.sql and tcc--1.1--1.2.sql */'; \
	  echo '\\echo Use "CREATE EXTENSION tcc" to load this file. \\quit'; \
	  sed '1d;/^\\echo /d' tcc--1.1.sql; \
	  sed '/^\\echo /d' tcc--1.1--1.2.sql; } > $@
