/*-------------------------------------------------------------------------
 *
 * coordinator.c
 *	  Whether this backend can use the coordinator: the library preloaded,
 *	  this database listed in tcc.database, and the SQL objects of this
 *	  library's version installed.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/coordinator.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"

#include "coordinator.h"
#include "shmem.h"
#include "tcc.h"

/*
 * Returns the version of the tcc extension installed in this database (as
 * pg_extension.extversion has it, palloc'd), or NULL if there is none.
 * Needs a transaction.
 */
char *
TccCoordinatorInstalledVersion(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("tcc"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * Raises 55000 unless this database holds the SQL objects of this library's
 * version: after the library was upgraded, the objects of the previous
 * version stay until ALTER EXTENSION tcc UPDATE, and the library's
 * statements need the new ones.  Once seen current, not checked again.
 */
static void
CoordinatorRequireVersion(void)
{
	static bool current = false;
	char	   *version;

	if (current)
		return;
	version = TccCoordinatorInstalledVersion();
	if (version != NULL && strcmp(version, TCC_VERSION) == 0)
	{
		current = true;
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("tcc extension version %s is installed, but the library is version %s",
					version ? version : "(none)", TCC_VERSION),
			 errhint("Run ALTER EXTENSION tcc UPDATE in database \"%s\".",
					 get_database_name(MyDatabaseId))));
}

/*
 * Raises 55000 unless this backend can use the coordinator: the library was
 * preloaded and tcc.database lists this database.  Points TccDb at this
 * database's shared state.
 */
void
TccCoordinatorRequire(void)
{
	char	   *dbname = NULL;

	if (tcc_preloaded && TccDb == NULL && TccShmemRoot != NULL)
	{
		dbname = get_database_name(MyDatabaseId);
		TccDb = TccShmemFind(dbname);
	}

	if (!tcc_preloaded || TccDb == NULL)
	{
		if (dbname == NULL)
			dbname = get_database_name(MyDatabaseId);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("tcc coordinator is not available in database \"%s\"",
						dbname ? dbname : "?"),
				 errhint("Add tcc to shared_preload_libraries and this database "
						 "to tcc.database, then restart the server.")));
	}
	CoordinatorRequireVersion();
}
