/*-------------------------------------------------------------------------
 *
 * counting.c
 *	  The statement triggers that keep tcc.metrics' counters and
 *	  tcc.activity's minutes (docs/views.md#metrics): each statement that
 *	  records calls (tcc._try, tcc._attempt) or begins, ends or deletes
 *	  transactions (tcc._gtx) adds what it counted to tcc._metric_delta and
 *	  tcc._minute_delta, in the same transaction, so a count commits, or
 *	  vanishes, with what it counts.  The worker folds the deltas
 *	  (tcc._metric_fold).
 *
 * The rows a statement wrote are read from its transition tables and
 * counted here, in C: the same counts the SQL functions tcc._metric_calls
 * and tcc._metric_ended make from scratch (tcc._metric_recount), at the
 * price of one short statement per statement counted (none when it
 * counted nothing) and, for transactions that end, a look-up of each
 * one's decision in the primary key of tcc._decision.  Every name in that
 * statement is qualified: a trigger runs under the search_path of whoever wrote the
 * rows, and a function with a SET clause of its own would cost a
 * configuration change on every statement counted.
 *
 * What a statement on tcc._gtx counts:
 *	 * tcc.activity's minutes: every row inserted is begun (at the minute
 *	   it was created); rows that go final are ended (at the minute they
 *	   finished), confirmed ones with their seconds from decision to end;
 *	 * a transaction ends when its row goes from a status that is not final
 *	   to one that is: tcc_transactions_total and the settle and end-to-end
 *	   histograms (none for resolved ones: a person ended those);
 *	 * tcc_kept: how many final transactions are kept, by status and owner.
 * Each counts what the final rows a statement leaves count, less what the
 * final rows it found counted: a row that ends counts once, a final row
 * updated again nets to nothing, a deleted one (the purge) leaves tcc_kept.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/counting.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"

#include "batch.h"
#include "states.h"
#include "status.h"
#include "store.h"

PG_FUNCTION_INFO_V1(tcc_count_calls);
PG_FUNCTION_INFO_V1(tcc_count_gtx);

/* the histogram bounds in seconds and their labels (tcc._metric_bounds) */
static const double bucket_bounds[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300
};
static const char *const bucket_labels[] = {
	"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
	"5", "10", "30", "60", "300"
};

/* A sample a statement adds to a counter (a row of tcc._metric_delta). */
typedef struct Sample
{
	const char *metric;
	const char *status;
	const char *kind;
	const char *op;
	const char *outcome;
	const char *le;
	Oid			owner;
	double		value;
} Sample;

/* What a statement adds to a minute of tcc.activity (tcc._minute_delta). */
typedef struct Minute
{
	TimestampTz minute;
	bool		known;			/* false: the minute is NULL */
	Oid			owner;
	int64		started;
	int64		finished;
	int64		confirmed;
	double		confirm_seconds;
} Minute;

/* What a statement counted so far. */
typedef struct Counts
{
	Sample	   *samples;
	int			nsamples;
	int			maxsamples;
	Minute	   *minutes;
	int			nminutes;
	int			maxminutes;
} Counts;

/* A row of tcc._gtx a statement left (sign 1) or found (sign -1). */
typedef struct GtxRow
{
	pg_uuid_t	gid;
	int			sign;
	char	   *status;
	char	   *kind;			/* NULL: none */
	Oid			owner;
	TimestampTz created_at;
	TimestampTz finished_at;
	bool		finished;		/* finished_at is not NULL */
	TimestampTz decided_at;
	bool		decided;		/* it has a decision */
} GtxRow;

/* The rows of tcc._gtx a statement counts. */
typedef struct GtxRows
{
	GtxRow	   *rows;
	int			n;
	int			max;
} GtxRows;

/*
 * What a statement counted, in one statement: the minutes ($1 - $6) and
 * the samples ($7 - $14), either set maybe empty.
 */
STMT(add_counts, 14,
	 "WITH m AS ("
	 "  INSERT INTO tcc._minute_delta"
	 "    (minute, owner, started, finished, confirmed, confirm_seconds)"
	 "  SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2),"
	 "    pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5),"
	 "    pg_catalog.unnest($6)))"
	 "INSERT INTO tcc._metric_delta"
	 "  (metric, status, kind, op, outcome, le, owner, value)"
	 " SELECT * FROM ROWS FROM (pg_catalog.unnest($7), pg_catalog.unnest($8),"
	 "   pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11),"
	 "   pg_catalog.unnest($12), pg_catalog.unnest($13), pg_catalog.unnest($14))",
	 TIMESTAMPTZARRAYOID, OIDARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
	 INT8ARRAYOID, FLOAT8ARRAYOID,
	 TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
	 TEXTARRAYOID, OIDARRAYOID, FLOAT8ARRAYOID);

/*
 * Returns items (n of them, room for *max) with room for one more: moved
 * to a larger allocation when full (*max then says how large).
 */
static void *
Grow(void *items, int n, int *max, Size size)
{
	if (n < *max)
		return items;
	*max = Max(*max * 2, 16);
	return items == NULL ? palloc(size * *max) : repalloc(items, size * *max);
}

/* Adds a sample; labels not given are ''. */
static void
AddSample(Counts *c, const char *metric, const char *status, const char *kind,
		  const char *op, const char *outcome, const char *le, Oid owner,
		  double value)
{
	Sample	   *s;

	c->samples = Grow(c->samples, c->nsamples, &c->maxsamples, sizeof(Sample));
	s = &c->samples[c->nsamples++];
	s->metric = metric;
	s->status = status ? status : "";
	s->kind = kind ? kind : "";
	s->op = op ? op : "";
	s->outcome = outcome ? outcome : "";
	s->le = le ? le : "";
	s->owner = owner;
	s->value = value;
}

/* Adds to the minute of ts (NULL when !known) and owner. */
static void
AddMinute(Counts *c, TimestampTz ts, bool known, Oid owner, int64 started,
		  int64 finished, int64 confirmed, double confirm_seconds)
{
	Minute	   *m;

	c->minutes = Grow(c->minutes, c->nminutes, &c->maxminutes, sizeof(Minute));
	m = &c->minutes[c->nminutes++];
	m->known = known;
	m->minute = known ?
		DatumGetTimestampTz(DirectFunctionCall2(timestamptz_trunc,
												CStringGetTextDatum("minute"),
												TimestampTzGetDatum(ts))) : 0;
	m->owner = owner;
	m->started = started;
	m->finished = finished;
	m->confirmed = confirmed;
	m->confirm_seconds = confirm_seconds;
}

/* The label of the histogram bucket seconds falls in (tcc._metric_bucket). */
static const char *
BucketOf(double seconds)
{
	for (int i = 0; i < lengthof(bucket_bounds); i++)
	{
		if (seconds <= bucket_bounds[i])
			return bucket_labels[i];
	}
	return "+Inf";
}

/* What an HTTP status counts as in tcc_calls_total (tcc._metric_outcome). */
static const char *
OutcomeOf(int http_status, bool answered)
{
	if (!answered)
		return "no_answer";
	if (http_status >= 200 && http_status <= 299)
		return "success";
	if (http_status == 409)
		return "refused";
	return "error";
}

/* Adds sign times an observation of seconds to histogram family. */
static void
Observe(Counts *c, const char *family, double seconds, int sign)
{
	AddSample(c, psprintf("%s_bucket", family), NULL, NULL, NULL, NULL,
			  BucketOf(seconds), InvalidOid, sign);
	AddSample(c, psprintf("%s_sum", family), NULL, NULL, NULL, NULL, NULL,
			  InvalidOid, sign * seconds);
}

static int
CompareSamples(const void *a, const void *b)
{
	const Sample *x = a;
	const Sample *y = b;
	int			r;

	if ((r = strcmp(x->metric, y->metric)) != 0 ||
		(r = strcmp(x->status, y->status)) != 0 ||
		(r = strcmp(x->kind, y->kind)) != 0 ||
		(r = strcmp(x->op, y->op)) != 0 ||
		(r = strcmp(x->outcome, y->outcome)) != 0 ||
		(r = strcmp(x->le, y->le)) != 0)
		return r;
	return x->owner < y->owner ? -1 : x->owner > y->owner ? 1 : 0;
}

static int
CompareMinutes(const void *a, const void *b)
{
	const Minute *x = a;
	const Minute *y = b;

	if (x->known != y->known)
		return x->known ? 1 : -1;
	if (x->minute != y->minute)
		return x->minute < y->minute ? -1 : 1;
	return x->owner < y->owner ? -1 : x->owner > y->owner ? 1 : 0;
}

/*
 * Sorts the n items of size bytes by cmp, sums those that compare equal
 * into one (add), and drops those that are nothing (none); returns how many
 * are left, at the start of items.
 */
static int
Merge(void *items, int n, Size size, int (*cmp) (const void *, const void *),
	  void (*add) (void *into, const void *item), bool (*none) (const void *))
{
	char	   *base = items;
	int			kept = 0;
	int			left = 0;

	if (n == 0)
		return 0;
	qsort(items, n, size, cmp);
	for (int i = 0; i < n; i++)
	{
		if (kept > 0 && cmp(base + (kept - 1) * size, base + i * size) == 0)
			add(base + (kept - 1) * size, base + i * size);
		else
			memmove(base + kept++ * size, base + i * size, size);
	}
	for (int i = 0; i < kept; i++)
	{
		if (!none(base + i * size))
			memmove(base + left++ * size, base + i * size, size);
	}
	return left;
}

static void
AddSampleTo(void *into, const void *item)
{
	((Sample *) into)->value += ((const Sample *) item)->value;
}

/* a sample that nets to 0 */
static bool
SampleIsNone(const void *item)
{
	return ((const Sample *) item)->value == 0;
}

static void
AddMinuteTo(void *into, const void *item)
{
	Minute	   *m = into;
	const Minute *add = item;

	m->started += add->started;
	m->finished += add->finished;
	m->confirmed += add->confirmed;
	m->confirm_seconds += add->confirm_seconds;
}

/* a minute in which nothing begins or ends on balance */
static bool
MinuteIsNone(const void *item)
{
	const Minute *m = item;

	return m->started == 0 && m->finished == 0;
}

/* the parameters of add_counts: the minutes' columns, then the samples' */
enum
{
	MIN_MINUTE,
	MIN_OWNER,
	MIN_STARTED,
	MIN_FINISHED,
	MIN_CONFIRMED,
	MIN_SECONDS,
	SAMPLE_METRIC,
	SAMPLE_STATUS,
	SAMPLE_KIND,
	SAMPLE_OP,
	SAMPLE_OUTCOME,
	SAMPLE_LE,
	SAMPLE_OWNER,
	SAMPLE_VALUE,
	COUNT_NCOLS
};

/* The rows of the minutes counted, in the minutes' columns of b. */
static void
MinuteRows(Counts *c, TccBatch *b)
{
	for (int i = 0; i < c->nminutes; i++)
	{
		Minute	   *m = &c->minutes[i];
		int			r = b->n++;

		/* a final row with no end: NULL, which tcc._minute_delta refuses */
		if (m->known)
			TccBatchSet(b, r, MIN_MINUTE, TimestampTzGetDatum(m->minute));
		else
			TccBatchSetNull(b, r, MIN_MINUTE);
		TccBatchSet(b, r, MIN_OWNER, ObjectIdGetDatum(m->owner));
		TccBatchSet(b, r, MIN_STARTED, Int64GetDatum(m->started));
		TccBatchSet(b, r, MIN_FINISHED, Int64GetDatum(m->finished));
		TccBatchSet(b, r, MIN_CONFIRMED, Int64GetDatum(m->confirmed));
		TccBatchSet(b, r, MIN_SECONDS, Float8GetDatum(m->confirm_seconds));
	}
}

/* The rows of the samples counted, in the samples' columns of b. */
static void
SampleRows(Counts *c, TccBatch *b)
{
	for (int i = 0; i < c->nsamples; i++)
	{
		Sample	   *s = &c->samples[i];
		int			r = b->n++;

		TccBatchSet(b, r, SAMPLE_METRIC, CStringGetTextDatum(s->metric));
		TccBatchSet(b, r, SAMPLE_STATUS, CStringGetTextDatum(s->status));
		TccBatchSet(b, r, SAMPLE_KIND, CStringGetTextDatum(s->kind));
		TccBatchSet(b, r, SAMPLE_OP, CStringGetTextDatum(s->op));
		TccBatchSet(b, r, SAMPLE_OUTCOME, CStringGetTextDatum(s->outcome));
		TccBatchSet(b, r, SAMPLE_LE, CStringGetTextDatum(s->le));
		TccBatchSet(b, r, SAMPLE_OWNER, ObjectIdGetDatum(s->owner));
		TccBatchSet(b, r, SAMPLE_VALUE, Float8GetDatum(s->value));
	}
}

/*
 * Writes what was counted, merged, in one statement (none when nothing
 * was), connected to SPI for it.
 */
static void
WriteCounts(Counts *c)
{
	TccBatch	minutes;
	TccBatch	samples;
	Datum		args[COUNT_NCOLS];

	c->nsamples = Merge(c->samples, c->nsamples, sizeof(Sample), CompareSamples,
						AddSampleTo, SampleIsNone);
	c->nminutes = Merge(c->minutes, c->nminutes, sizeof(Minute), CompareMinutes,
						AddMinuteTo, MinuteIsNone);
	if (c->nsamples == 0 && c->nminutes == 0)
		return;
	/* two batches of the one statement, each filling its own parameters */
	TccBatchInit(&minutes, &add_counts, c->nminutes);
	TccBatchInit(&samples, &add_counts, c->nsamples);
	for (int k = 0; k < COUNT_NCOLS; k++)
	{
		if (k < SAMPLE_METRIC)
			samples.cols[k].typid = InvalidOid;
		else
			minutes.cols[k].typid = InvalidOid;
	}
	MinuteRows(c, &minutes);
	SampleRows(c, &samples);
	TccBatchParams(&minutes, args);
	TccBatchParams(&samples, args);
	SPI_connect();
	TccStoreExec(&add_counts, args, NULL, false);
	SPI_finish();
}

/* Checks that a counting function runs as an AFTER ... FOR EACH STATEMENT trigger. */
static TriggerData *
StatementTrigger(FunctionCallInfo fcinfo, const char *name)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as an AFTER ... FOR EACH STATEMENT trigger",
						name)));
	return td;
}

/* Returns the column number of name in desc; an error if there is none. */
static int
Column(TupleDesc desc, const char *name)
{
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "tcc: the table counted has no column \"%s\"", name);
	return attnum;
}

/*
 * Counts the calls a statement recorded: answered tries (tcc._try, where a
 * row is a try) or calls of any op (tcc._attempt, which names it).
 */
Datum
tcc_count_calls(PG_FUNCTION_ARGS)
{
	TriggerData *td = StatementTrigger(fcinfo, "tcc._count_calls");
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	bool		has_op = SPI_fnumber(desc, "op") > 0;
	int			op_col = has_op ? Column(desc, "op") : 0;
	int			status_col = Column(desc, "http_status");
	int			duration_col = Column(desc, "duration_ms");
	TupleTableSlot *slot;
	Counts		c = {0};

	if (td->tg_newtable == NULL)
		elog(ERROR, "tcc._count_calls needs REFERENCING NEW TABLE");
	slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	tuplestore_rescan(td->tg_newtable);
	while (tuplestore_gettupleslot(td->tg_newtable, true, false, slot))
	{
		bool		no_status;
		bool		no_duration;
		bool		isnull;
		const char *op = has_op ?
			TextDatumGetCString(slot_getattr(slot, op_col, &isnull)) : "try";
		Datum		status = slot_getattr(slot, status_col, &no_status);
		Datum		duration = slot_getattr(slot, duration_col, &no_duration);

		AddSample(&c, "tcc_calls_total", NULL, NULL, op,
				  OutcomeOf(no_status ? 0 : DatumGetInt32(status), !no_status),
				  NULL, InvalidOid, 1);
		if (strcmp(op, "try") == 0 && !no_duration)
			Observe(&c, "tcc_try_duration_seconds",
					DatumGetFloat8(duration) / 1000, 1);
	}
	ExecDropSingleTupleTableSlot(slot);
	WriteCounts(&c);
	return PointerGetDatum(NULL);
}

/*
 * Reads the rows of a transition table of tcc._gtx into rows, each with
 * sign; only the final ones when final_only.
 */
static void
ReadGtxRows(Tuplestorestate *ts, TupleDesc desc, int sign, bool final_only,
			GtxRows *rows)
{
	int			gid_col = Column(desc, "gid");
	int			status_col = Column(desc, "status");
	int			kind_col = Column(desc, "kind");
	int			owner_col = Column(desc, "owner");
	int			created_col = Column(desc, "created_at");
	int			finished_col = Column(desc, "finished_at");
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);

	tuplestore_rescan(ts);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		bool		isnull;
		char	   *status = TextDatumGetCString(slot_getattr(slot, status_col,
															  &isnull));
		GtxRow	   *r;
		Datum		d;

		if (final_only && !TccStatusIsFinal(status))
			continue;
		rows->rows = Grow(rows->rows, rows->n, &rows->max, sizeof(GtxRow));
		r = &rows->rows[rows->n++];
		r->sign = sign;
		r->status = status;
		r->gid = *DatumGetUUIDP(slot_getattr(slot, gid_col, &isnull));
		d = slot_getattr(slot, kind_col, &isnull);
		r->kind = isnull ? NULL : TextDatumGetCString(d);
		r->owner = DatumGetObjectId(slot_getattr(slot, owner_col, &isnull));
		r->created_at = DatumGetTimestampTz(slot_getattr(slot, created_col,
														 &isnull));
		d = slot_getattr(slot, finished_col, &isnull);
		r->finished = !isnull;
		r->finished_at = isnull ? 0 : DatumGetTimestampTz(d);
		r->decided = false;
	}
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * Reads when each of rows was decided: a look-up per gid in the primary key
 * of tcc._decision (the table beside gtx, the rows' table), under the
 * statement's snapshot.
 */
static void
ReadDecisions(Relation gtx, GtxRows *rows)
{
	Oid			relid;
	Relation	rel;
	Relation	idx;
	TupleTableSlot *slot;
	IndexScanDesc scan;
	int			decided_col;

	if (rows->n == 0)
		return;
	relid = get_relname_relid("_decision", RelationGetNamespace(gtx));
	if (!OidIsValid(relid))
		elog(ERROR, "tcc: no table _decision beside %s",
			 RelationGetRelationName(gtx));
	rel = table_open(relid, AccessShareLock);
	idx = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	decided_col = Column(RelationGetDescr(rel), "decided_at");
	slot = table_slot_create(rel, NULL);
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
	for (int i = 0; i < rows->n; i++)
	{
		GtxRow	   *r = &rows->rows[i];
		ScanKeyData key;
		bool		isnull;

		ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ,
					UUIDPGetDatum(&r->gid));
		index_rescan(scan, &key, 1, NULL, 0);
		r->decided = index_getnext_slot(scan, ForwardScanDirection, slot);
		if (r->decided)
		{
			r->decided_at = DatumGetTimestampTz(slot_getattr(slot, decided_col,
															 &isnull));
			r->decided = !isnull;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);
}

/* Seconds from a to b. */
static double
Seconds(TimestampTz a, TimestampTz b)
{
	return (double) (b - a) / USECS_PER_SEC;
}

/*
 * Counts a final row an update left or found: the transaction ended (or,
 * found, its end is taken back), its histograms and its minute.
 */
static void
CountEnded(Counts *c, GtxRow *r)
{
	bool		confirmed = strcmp(r->status, TCC_STATUS_CONFIRMED) == 0;
	bool		timed = r->finished && r->decided;

	AddSample(c, "tcc_transactions_total", r->status, r->kind, NULL, NULL,
			  NULL, r->owner, r->sign);
	if (strcmp(r->status, "resolved") != 0)
	{
		if (timed)
			Observe(c, "tcc_settle_duration_seconds",
					Seconds(r->decided_at, r->finished_at), r->sign);
		if (r->finished)
			Observe(c, "tcc_transaction_duration_seconds",
					Seconds(r->created_at, r->finished_at), r->sign);
	}
	AddMinute(c, r->finished_at, r->finished, r->owner, 0, r->sign,
			  confirmed ? r->sign : 0,
			  confirmed && timed ?
			  r->sign * Seconds(r->decided_at, r->finished_at) : 0);
}

/* Counts what a statement on tcc._gtx did (the file's header says what). */
Datum
tcc_count_gtx(PG_FUNCTION_ARGS)
{
	TriggerData *td = StatementTrigger(fcinfo, "tcc._count_gtx");
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	bool		inserted = TRIGGER_FIRED_BY_INSERT(td->tg_event);
	bool		updated = TRIGGER_FIRED_BY_UPDATE(td->tg_event);
	GtxRows		rows = {0};
	Counts		c = {0};

	if ((!TRIGGER_FIRED_BY_DELETE(td->tg_event) && td->tg_newtable == NULL) ||
		(!inserted && td->tg_oldtable == NULL))
		elog(ERROR, "tcc._count_gtx needs the transition tables of its event");
	/* rows inserted: all (each begins); else the final ones */
	if (td->tg_newtable != NULL)
		ReadGtxRows(td->tg_newtable, desc, 1, !inserted, &rows);
	if (td->tg_oldtable != NULL)
		ReadGtxRows(td->tg_oldtable, desc, -1, true, &rows);
	if (updated)
		ReadDecisions(td->tg_relation, &rows);
	for (int i = 0; i < rows.n; i++)
	{
		GtxRow	   *r = &rows.rows[i];
		bool		final = TccStatusIsFinal(r->status);

		if (inserted)
			AddMinute(&c, r->created_at, true, r->owner, 1, 0, 0, 0);
		if (!final)
			continue;
		AddSample(&c, "tcc_kept", r->status, NULL, NULL, NULL, NULL, r->owner,
				  r->sign);
		if (updated)
			CountEnded(&c, r);
		else if (inserted)
			AddMinute(&c, r->finished_at, r->finished, r->owner, 0, 1,
					  strcmp(r->status, TCC_STATUS_CONFIRMED) == 0 ? 1 : 0, 0);
	}
	WriteCounts(&c);
	return PointerGetDatum(NULL);
}
