/*-------------------------------------------------------------------------
 *
 * tcc.c
 *	  Module entry point and settings.
 *
 * _PG_init defines every tcc.* setting and, when the library is preloaded,
 * asks for shared memory and registers the coordinator worker.  Loaded any
 * other way (CREATE EXTENSION without preloading), only the participant
 * barrier works and the coordinator functions refuse with SQLSTATE 55000.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/tcc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "tcc.h"

PG_MODULE_MAGIC;

char	   *tcc_database = NULL;
int			tcc_max_concurrency = 128;
int			tcc_destination_share = 25;
int			tcc_default_timeout = 60000;
int			tcc_request_timeout = 10000;
int			tcc_retry_interval = 10000;
int			tcc_retry_max_interval = 3600000;
int			tcc_max_attempts = 50;
int			tcc_retention = 7 * 24 * 3600;
char	   *tcc_allowed_urls = NULL;
int			tcc_max_payload_size = 1024;
bool		tcc_preloaded = false;
bool		tcc_in_worker = false;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

/* Chains to the previous shared memory request hook, then asks for ours. */
static void
tcc_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	TccShmemRequest();
}

/* Chains to the previous shared memory startup hook, then sets up ours. */
static void
tcc_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	TccShmemStartup();
}

/*
 * Check hook of tcc.request_timeout: the coordinator worker takes it from
 * the server configuration only.  A database- or role-level value would
 * time out every confirm and cancel of every role; in the worker's session
 * it is refused (a WARNING in the log says so).
 */
static bool
CheckRequestTimeout(int *newval, void **extra, GucSource source)
{
	if (tcc_in_worker && source >= PGC_S_GLOBAL &&
		source <= PGC_S_DATABASE_USER)
	{
		GUC_check_errdetail("The tcc coordinator worker takes tcc.request_timeout from the server configuration only.");
		return false;
	}
	return true;
}

/* Defines the settings of SPEC section 10. */
static void
DefineSettings(void)
{
	DefineCustomStringVariable("tcc.database",
							   "Database in which the tcc coordinator runs.",
							   NULL, &tcc_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.max_concurrency",
							"Most participant calls the worker has in flight at once.",
							NULL, &tcc_max_concurrency, 128, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.destination_share",
							"Largest share of tcc.max_concurrency, in percent, that calls to one destination may use.",
							"A destination is a URL's scheme, host and port; each may use at least one slot.",
							&tcc_destination_share, 25, 1, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.default_timeout",
							"Deadline of a global transaction when tcc_begin is given none.",
							NULL, &tcc_default_timeout, 60000, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.request_timeout",
							"Time limit of one participant call.",
							NULL, &tcc_request_timeout, 10000, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, CheckRequestTimeout,
							NULL, NULL);
	DefineCustomIntVariable("tcc.retry_interval",
							"Delay before the first retry of a confirm or cancel.",
							NULL, &tcc_retry_interval, 10000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.retry_max_interval",
							"Longest delay between retries of a confirm or cancel.",
							NULL, &tcc_retry_max_interval, 3600000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.max_attempts",
							"Attempts of a confirm or cancel before the transaction is failed.",
							NULL, &tcc_max_attempts, 50, 1, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.retention",
							"Age after which final transactions are deleted.",
							NULL, &tcc_retention, 7 * 24 * 3600, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("tcc.allowed_urls",
							   "Comma-separated URLs participant URLs must lie under (same scheme, host and port; path at or below); empty allows any http or https URL.",
							   NULL, &tcc_allowed_urls, "",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.max_payload_size",
							"Largest payload tcc_branch accepts.",
							NULL, &tcc_max_payload_size, 1024, 1, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);
	MarkGUCPrefixReserved("tcc");
}

/* Module load: settings always; shared memory and the worker when preloaded. */
void
_PG_init(void)
{
	DefineSettings();

	if (!process_shared_preload_libraries_in_progress)
		return;
	tcc_preloaded = true;
	if (IsBinaryUpgrade)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tcc_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tcc_shmem_startup;

	TccRegisterWorker();
	TccWatchDropDatabase();
}

/*
 * Raises 55000 unless this backend can use the coordinator: the library was
 * preloaded and this is the tcc.database database.
 */
void
TccRequireCoordinator(void)
{
	static Oid	coordinator_db = InvalidOid;

	if (tcc_preloaded && TccState != NULL && !OidIsValid(coordinator_db))
		coordinator_db = get_database_oid(tcc_database, true);

	if (!tcc_preloaded || TccState == NULL || MyDatabaseId != coordinator_db)
	{
		char	   *dbname = get_database_name(MyDatabaseId);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tcc coordinator is not available in database \"%s\"",
						dbname ? dbname : "?"),
				 errhint("Add tcc to shared_preload_libraries and set tcc.database "
						 "to the coordinator database, then restart the server.")));
	}
}

/* Returns a copy of s cut to at most max bytes on a character boundary. */
char *
TccClip(const char *s, int max)
{
	int			len = strlen(s);

	if (len > max)
		len = pg_mbcliplen(s, len, max);
	return pnstrdup(s, len);
}

/*
 * Copies src into dst of size bytes, like strlcpy, but never cuts a
 * multibyte character (SPEC section 11).
 */
void
TccStrlcpy(char *dst, const char *src, size_t size)
{
	int			len = strlen(src);

	if (size == 0)
		return;
	if (len > (int) size - 1)
		len = pg_mbcliplen(src, len, (int) size - 1);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Returns the protocol name of an operation. */
const char *
TccOpName(TccOp op)
{
	switch (op)
	{
		case TCC_OP_TRY:
			return "try";
		case TCC_OP_CONFIRM:
			return "confirm";
		case TCC_OP_CANCEL:
			return "cancel";
	}
	return "?";
}

/*
 * Runs fn(arg) in a subtransaction.  Returns NULL when it succeeded, else
 * the error it raised, copied into the caller's memory context, with the
 * subtransaction rolled back.
 */
ErrorData *
TccInSubtransaction(void (*fn) (void *arg), void *arg)
{
	MemoryContext old = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(old);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	CurrentResourceOwner = owner;
	return edata;
}
