/*-------------------------------------------------------------------------
 *
 * util.c
 *	  Small helpers every layer uses: clipping and copying strings on a
 *	  character boundary, running a function in a subtransaction.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/util.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "util.h"

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
 * multibyte character (docs/api.md#bad-input).
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
