# Makefile for the tcc extension (PGXS)

MODULE_big = tcc
OBJS = \
	src/api.o \
	src/arrayargs.o \
	src/backoff.o \
	src/barrier.o \
	src/calls.o \
	src/cancel.o \
	src/coordinator.o \
	src/durable.o \
	src/gid.o \
	src/http.o \
	src/intent.o \
	src/ops.o \
	src/pause.o \
	src/protocol.o \
	src/purge.o \
	src/request.o \
	src/schedule.o \
	src/settle.o \
	src/settled.o \
	src/shmem.o \
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

# after PGXS, which sets its own default (make installcheck's database)
CONTRIB_TESTDB = tcc_test

# Each object depends on the headers it includes, directly or through
# another header (the layouts of shared memory and of the requests are in
# them).  Keep in step with the #include lines.
src/api.o: src/coordinator.h src/durable.h src/gid.h src/http.h src/protocol.h \
	src/request.h src/schedule.h src/shmem.h src/store.h src/tcc.h src/tries.h \
	src/validate.h
src/backoff.o: src/backoff.h src/tcc.h
src/barrier.o: src/http.h src/protocol.h src/request.h src/store.h src/tcc.h \
	src/util.h src/validate.h
src/arrayargs.o: src/arrayargs.h
src/calls.o: src/calls.h src/http.h src/protocol.h src/rows.h src/schedule.h \
	src/states.h src/store.h src/tcc.h
src/cancel.o: src/cancel.h src/gid.h src/http.h src/protocol.h src/rows.h \
	src/states.h src/store.h src/tcc.h
src/coordinator.o: src/coordinator.h src/protocol.h src/request.h \
	src/schedule.h src/shmem.h src/tcc.h
src/durable.o: src/durable.h
src/gid.o: src/gid.h
src/http.o: src/http.h src/protocol.h src/tcc.h
src/intent.o: src/gid.h src/http.h src/intent.h src/protocol.h src/request.h \
	src/schedule.h src/store.h src/tcc.h src/util.h
src/ops.o: src/coordinator.h src/pause.h src/protocol.h src/request.h \
	src/schedule.h src/shmem.h src/tcc.h src/validate.h
src/pause.o: src/http.h src/pause.h src/protocol.h src/request.h \
	src/schedule.h src/shmem.h src/store.h src/tcc.h
src/protocol.o: src/protocol.h
src/purge.o: src/http.h src/protocol.h src/purge.h src/store.h src/tcc.h
src/request.o: src/durable.h src/protocol.h src/request.h src/schedule.h \
	src/shmem.h src/tcc.h
src/schedule.o: src/protocol.h src/schedule.h src/tcc.h
src/settle.o: src/arrayargs.h src/backoff.h src/http.h src/protocol.h \
	src/rows.h src/schedule.h src/settle.h src/settled.h src/states.h \
	src/store.h src/tcc.h
src/settled.o: src/settled.h
src/shmem.o: src/protocol.h src/request.h src/schedule.h src/shmem.h src/tcc.h
src/store.o: src/http.h src/protocol.h src/store.h src/tcc.h
src/tcc.o: src/protocol.h src/request.h src/schedule.h src/shmem.h src/tcc.h \
	src/worker.h
src/tries.o: src/gid.h src/http.h src/protocol.h src/request.h src/schedule.h \
	src/shmem.h src/store.h src/tcc.h src/tries.h src/util.h
src/util.o: src/util.h
src/validate.o: src/http.h src/protocol.h src/request.h src/tcc.h \
	src/validate.h
src/worker.o: src/calls.h src/cancel.h src/coordinator.h src/durable.h \
	src/http.h src/intent.h src/pause.h src/protocol.h src/purge.h \
	src/request.h src/schedule.h src/settle.h src/settled.h src/shmem.h \
	src/store.h src/tcc.h src/worker.h src/workerproc.h
src/workerproc.o: src/protocol.h src/request.h src/schedule.h src/shmem.h \
	src/tcc.h src/util.h src/workerproc.h

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
