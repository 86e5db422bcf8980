/*-------------------------------------------------------------------------
 *
 * tcc.c
 *	  Module entry point and settings.
 *
 * _PG_init defines every tcc.* setting and, when the library is preloaded,
 * asks for shared memory and registers one coordinator worker for each
 * database tcc.database lists.  Loaded any other way (CREATE EXTENSION
 * without preloading), and in any database not in the list, only the
 * participant barrier works and the coordinator functions refuse with
 * SQLSTATE 55000.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/tcc.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "parser/scansup.h"
#include "storage/ipc.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "protocol.h"
#include "shmem.h"
#include "tcc.h"
#include "worker.h"

PG_MODULE_MAGIC;

/* the settings' defaults (docs/settings.md) */
#define BOOT_WORKERS 1			/* coordinator workers per database */
#define BOOT_MAX_CONCURRENCY 128	/* calls in flight */
#define BOOT_DESTINATION_SHARE 25	/* percent of tcc.max_concurrency */
#define BOOT_DEFAULT_TIMEOUT_MS 60000	/* a minute */
#define BOOT_REQUEST_TIMEOUT_MS 10000	/* ten seconds */
#define BOOT_RETRY_INTERVAL_MS 10000	/* ten seconds */
#define BOOT_RETRY_MAX_INTERVAL_MS 3600000	/* an hour */
#define BOOT_MAX_ATTEMPTS 50	/* attempts */
#define BOOT_RETENTION_S (7 * 24 * 3600)	/* a week, in seconds */
#define BOOT_MAX_PAYLOAD_KB 1024	/* 1 MB, in kB */
#define BOOT_MAX_BRANCHES_PER_CALL 100	/* branches */

char	   *tcc_database = NULL;
int			tcc_workers = BOOT_WORKERS;
int			tcc_max_concurrency = BOOT_MAX_CONCURRENCY;
int			tcc_destination_share = BOOT_DESTINATION_SHARE;
int			tcc_default_timeout = BOOT_DEFAULT_TIMEOUT_MS;
int			tcc_request_timeout = BOOT_REQUEST_TIMEOUT_MS;
int			tcc_retry_interval = BOOT_RETRY_INTERVAL_MS;
int			tcc_retry_max_interval = BOOT_RETRY_MAX_INTERVAL_MS;
int			tcc_max_attempts = BOOT_MAX_ATTEMPTS;
int			tcc_retention = BOOT_RETENTION_S;
char	   *tcc_allowed_urls = NULL;
int			tcc_max_payload_size = BOOT_MAX_PAYLOAD_KB;
int			tcc_max_branches_per_call = BOOT_MAX_BRANCHES_PER_CALL;
char	   *tcc_traceparent = NULL;
char	   *tcc_ca_file = NULL;
char	   *tcc_client_cert = NULL;
char	   *tcc_client_key = NULL;
bool		tcc_preloaded = false;
bool		tcc_in_worker = false;

/* the names tcc.database lists, as the postmaster read them at start */
static List *coordinator_databases = NIL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

void		_PG_init(void);

/* Chains to the previous shared memory request hook, then asks for ours. */
static void
tcc_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	TccShmemRequest(list_length(coordinator_databases));
}

/* Chains to the previous shared memory startup hook, then sets up ours. */
static void
tcc_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	TccShmemStartup(coordinator_databases);
}

/*
 * Splits a tcc.database value into its database names: separated by
 * commas, white space around each ignored, none empty, none longer than a
 * database name can be, none twice, at most TCC_MAX_DATABASES.  Returns
 * false and a message in *why when the value is not such a list; else the
 * names, each palloc'd, in *names.
 */
static bool
SplitDatabases(const char *value, List **names, char **why)
{
	char	   *copy = pstrdup(value);
	char	   *next = copy;
	int			n = 0;

	*names = NIL;
	*why = NULL;
	for (;;)
	{
		char	   *name = next;
		char	   *comma = strchr(next, ',');
		char	   *end;
		ListCell   *lc;

		if (comma)
			*comma = '\0';
		next = comma ? comma + 1 : NULL;
		n++;

		while (scanner_isspace(*name))
			name++;
		end = name + strlen(name);
		while (end > name && scanner_isspace(end[-1]))
			*--end = '\0';

		if (*name == '\0')
			*why = psprintf("Entry %d of the list is empty.", n);
		else if (strlen(name) >= NAMEDATALEN)
			*why = psprintf("Database name \"%s\" is longer than %d bytes.",
							name, NAMEDATALEN - 1);
		else if (n > TCC_MAX_DATABASES)
			*why = psprintf("At most %d databases can be listed.",
							TCC_MAX_DATABASES);
		else
		{
			foreach(lc, *names)
			{
				if (strcmp(lfirst(lc), name) == 0)
					*why = psprintf("Database \"%s\" is listed twice.", name);
			}
		}
		if (*why != NULL)
		{
			list_free_deep(*names);
			*names = NIL;
			pfree(copy);
			return false;
		}
		*names = lappend(*names, pstrdup(name));
		if (next == NULL)
		{
			pfree(copy);
			return true;
		}
	}
}

/*
 * Checks a new tcc.database value (ALTER SYSTEM, a reload).  While the
 * postmaster loads the library the value passes: a rejected one would fall
 * back to the default silently, so _PG_init refuses to start instead.
 */
static bool
CheckDatabase(char **newval, void **extra, GucSource source)
{
	List	   *names;
	char	   *why;

	if (process_shared_preload_libraries_in_progress)
		return true;
	if (SplitDatabases(*newval, &names, &why))
	{
		list_free_deep(names);
		return true;
	}
	GUC_check_errdetail("%s", why);
	GUC_check_errhint("tcc.database is a comma-separated list of database names.");
	return false;
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

/*
 * Check hook of tcc.traceparent: empty, or a W3C traceparent
 * (docs/protocol.md#trace-context).
 */
static bool
CheckTraceparent(char **newval, void **extra, GucSource source)
{
	TccTrace	trace;

	if (**newval == '\0' || TccTraceParse(*newval, &trace))
		return true;
	GUC_check_errdetail("A traceparent is 00-<trace id>-<parent id>-<flags>: 32, 16 and 2 lower-case hex digits, neither id all zeros.");
	return false;
}

/* how much of a TLS file the check reads */
#define PEM_READ_LIMIT (64 * 1024)

/*
 * Checks that a TLS file setting is empty or names a file the server can
 * read that holds a PEM block of that kind ("CERTIFICATE", "PRIVATE KEY"),
 * within its first 64 kB.  A setting that fails is refused by ALTER SYSTEM
 * and by a reload, which keeps the value in force (docs/settings.md).
 */
static bool
CheckPemFile(const char *path, const char *kind)
{
	static char buf[PEM_READ_LIMIT + 1];
	int			fd;
	ssize_t		n;

	if (path == NULL || path[0] == '\0')
		return true;
	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
	{
		GUC_check_errdetail("Could not open file \"%s\": %m.", path);
		return false;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		GUC_check_errdetail("Could not read file \"%s\": %m.", path);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	if (strstr(buf, "-----BEGIN ") == NULL || strstr(buf, kind) == NULL)
	{
		GUC_check_errdetail("File \"%s\" holds no PEM %s.", path,
							strcmp(kind, "PRIVATE KEY") == 0 ?
							"private key" : "certificate");
		return false;
	}
	return true;
}

/* Check hook of tcc.ca_file and tcc.client_cert: a PEM certificate file. */
static bool
CheckCertFile(char **newval, void **extra, GucSource source)
{
	return CheckPemFile(*newval, "-----BEGIN CERTIFICATE-----");
}

/* Check hook of tcc.client_key: a PEM private key file. */
static bool
CheckKeyFile(char **newval, void **extra, GucSource source)
{
	return CheckPemFile(*newval, "PRIVATE KEY");
}

/* Defines the settings of docs/settings.md. */
static void
DefineSettings(void)
{
	/*
	 * A postmaster setting can only be defined while the postmaster loads
	 * the library: loaded later (CREATE EXTENSION on a server that does not
	 * preload tcc, for the barrier) the definition would end the session.
	 * Without preloading there is no coordinator to name.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable("tcc.database",
								   "Databases in which the tcc coordinator runs, tcc.workers workers each.",
								   "A comma-separated list of database names.",
								   &tcc_database, "postgres",
								   PGC_POSTMASTER, GUC_LIST_INPUT,
								   CheckDatabase, NULL, NULL);
		DefineCustomIntVariable("tcc.workers",
								"Coordinator workers per coordinator database.",
								"Each owns a share of the global transactions, by gid.",
								&tcc_workers, BOOT_WORKERS, 1, TCC_MAX_WORKERS,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
	}
	DefineCustomIntVariable("tcc.max_concurrency",
							"Most participant calls the workers of a database have in flight at once.",
							NULL, &tcc_max_concurrency, BOOT_MAX_CONCURRENCY, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.destination_share",
							"Largest share of tcc.max_concurrency, in percent, that calls to one destination may use.",
							"A destination is a URL's scheme, host and port; each may use at least one slot.",
							&tcc_destination_share, BOOT_DESTINATION_SHARE, 1, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.default_timeout",
							"Deadline of a global transaction when tcc_begin is given none.",
							NULL, &tcc_default_timeout, BOOT_DEFAULT_TIMEOUT_MS, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.request_timeout",
							"Time limit of one participant call.",
							NULL, &tcc_request_timeout, BOOT_REQUEST_TIMEOUT_MS, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, CheckRequestTimeout,
							NULL, NULL);
	DefineCustomIntVariable("tcc.retry_interval",
							"Delay before the first retry of a confirm or cancel.",
							NULL, &tcc_retry_interval, BOOT_RETRY_INTERVAL_MS, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.retry_max_interval",
							"Longest delay between retries of a confirm or cancel.",
							NULL, &tcc_retry_max_interval, BOOT_RETRY_MAX_INTERVAL_MS, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.max_attempts",
							"Attempts of a confirm or cancel before the transaction is failed.",
							NULL, &tcc_max_attempts, BOOT_MAX_ATTEMPTS, 1, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.retention",
							"Age after which final transactions are deleted.",
							NULL, &tcc_retention, BOOT_RETENTION_S, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("tcc.allowed_urls",
							   "Comma-separated URLs participant URLs must lie under (same scheme, host and port; path at or below); empty allows any http or https URL.",
							   NULL, &tcc_allowed_urls, "",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.max_payload_size",
							"Largest payload tcc_branch accepts.",
							NULL, &tcc_max_payload_size, BOOT_MAX_PAYLOAD_KB, 1, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("tcc.max_branches_per_call",
							"Most branches one tcc_branches or tcc_run call accepts.",
							NULL, &tcc_max_branches_per_call, BOOT_MAX_BRANCHES_PER_CALL, 1, 1000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("tcc.traceparent",
							   "W3C traceparent whose trace the global transactions tcc_begin and tcc_run start join, when they are given none.",
							   "Empty: each global transaction is a trace of its own.",
							   &tcc_traceparent, "",
							   PGC_USERSET, 0, CheckTraceparent, NULL, NULL);
	DefineCustomStringVariable("tcc.ca_file",
							   "File of PEM CA certificates that participants' certificates are verified against.",
							   "Empty: the system's CAs.",
							   &tcc_ca_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, CheckCertFile,
							   NULL, NULL);
	DefineCustomStringVariable("tcc.client_cert",
							   "File of the PEM certificate presented to participants that ask for one.",
							   "Empty: none.",
							   &tcc_client_cert, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, CheckCertFile,
							   NULL, NULL);
	DefineCustomStringVariable("tcc.client_key",
							   "File of the PEM private key of tcc.client_cert.",
							   "Empty: none.",
							   &tcc_client_key, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, CheckKeyFile,
							   NULL, NULL);
	MarkGUCPrefixReserved("tcc");
}

/*
 * Reads tcc.database at server start: the server refuses to start, saying
 * why, unless it is a valid list of at most TCC_MAX_DATABASES names, and
 * there are background worker slots enough for one worker each.
 */
static void
ReadDatabases(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	char	   *why;

	if (!SplitDatabases(tcc_database, &coordinator_databases, &why))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for parameter \"tcc.database\": \"%s\"",
						tcc_database),
				 errdetail("%s", why),
				 errhint("tcc.database is a comma-separated list of database names.")));
	if (list_length(coordinator_databases) * tcc_workers > max_worker_processes)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tcc.database lists %d databases with tcc.workers = %d each: %d workers, more than max_worker_processes (%d)",
						list_length(coordinator_databases), tcc_workers,
						list_length(coordinator_databases) * tcc_workers,
						max_worker_processes),
				 errhint("Each coordinator worker takes a background worker slot: raise max_worker_processes or lower tcc.workers.")));
	MemoryContextSwitchTo(old);
}

/*
 * Module load: settings always; shared memory and one worker per
 * coordinator database when preloaded.
 */
void
_PG_init(void)
{
	ListCell   *lc;

	DefineSettings();

	if (!process_shared_preload_libraries_in_progress)
		return;
	tcc_preloaded = true;
	if (IsBinaryUpgrade)
		return;

	ReadDatabases();
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tcc_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tcc_shmem_startup;

	foreach(lc, coordinator_databases)
	{
		for (int k = 0; k < tcc_workers; k++)
			TccRegisterWorker(foreach_current_index(lc), k, lfirst(lc));
	}
	TccWatchDropDatabase();
}
