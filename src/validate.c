/*-------------------------------------------------------------------------
 *
 * validate.c
 *	  Checks of user input before anything is written or sent.
 *
 * Every check raises an ERROR with a SQLSTATE (docs/api.md#bad-input); none of
 * them writes or calls anything, so bad input leaves no trace.
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/validate.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "utils/varlena.h"

#include "http.h"
#include "protocol.h"
#include "request.h"
#include "tcc.h"
#include "validate.h"

#define TCC_MAX_URL 4096
#define TCC_MAX_HEADERS 64
#define TCC_MAX_HEADER_LINE 8192
#define TCC_MAX_HEADER_NAME 64

/* Raises 22023 if argument n of a SQL function, called name, is NULL. */
void
TccValidateArgGiven(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null", name)));
}

/* Returns argument n of a SQL function as a gid; NULL is an error. */
pg_uuid_t *
TccValidateGidArg(FunctionCallInfo fcinfo, int n)
{
	TccValidateArgGiven(fcinfo, n, "gid");
	return PG_GETARG_UUID_P(n);
}

/*
 * Returns true if path holds something a server might decode into a path
 * other than the one checked: a percent-encoded dot segment ("%2e%2e"), an
 * encoded slash or backslash, or a backslash (some servers take it for a
 * slash).  libcurl has resolved the plain dot segments already.
 */
static bool
PathAmbiguous(const char *path)
{
	const char *seg = path;

	if (strchr(path, '\\') != NULL)
		return true;
	for (const char *p = path; *p; p++)
	{
		if (p[0] == '%' && p[1] == '2' && (p[2] == 'f' || p[2] == 'F'))
			return true;
		if (p[0] == '%' && p[1] == '5' && (p[2] == 'c' || p[2] == 'C'))
			return true;
	}
	while (*seg)
	{
		const char *end;
		int			dots = 0;
		bool		other = false;

		seg += (*seg == '/');
		end = seg + strcspn(seg, "/?#");
		for (const char *p = seg; p < end; p++)
		{
			if (*p == '.')
				dots++;
			else if (p[0] == '%' && p + 2 < end && p[1] == '2' &&
					 (p[2] == 'e' || p[2] == 'E'))
			{
				dots++;
				p += 2;
			}
			else
				other = true;
		}
		if (!other && (dots == 1 || dots == 2))
			return true;
		if (*end != '/')
			break;
		seg = end;
	}
	return false;
}

/*
 * Returns true if url lies under entry: the same scheme, host and port, and
 * a path equal to the entry's or under it at a '/' boundary.
 */
static bool
UrlUnder(TccUrl *url, TccUrl *entry)
{
	size_t		len = strlen(entry->path);

	if (pg_strcasecmp(url->scheme, entry->scheme) != 0 ||
		pg_strcasecmp(url->host, entry->host) != 0 ||
		url->port != entry->port)
		return false;
	if (strncmp(url->path, entry->path, len) != 0)
		return false;
	return url->path[len] == '\0' || url->path[len] == '/' ||
		entry->path[len - 1] == '/';
}

/*
 * Returns true if the parsed url is allowed by tcc.allowed_urls
 * (docs/settings.md#tccallowed_urls): empty allows every URL; an entry that
 * does not parse allows none.
 */
static bool
UrlAllowed(TccUrl *url)
{
	char	   *list;
	char	   *tok;
	char	   *save = NULL;

	if (tcc_allowed_urls == NULL || tcc_allowed_urls[0] == '\0')
		return true;
	list = pstrdup(tcc_allowed_urls);
	for (tok = strtok_r(list, ", \t", &save); tok != NULL;
		 tok = strtok_r(NULL, ", \t", &save))
	{
		TccUrl		entry;
		char		why[128];

		if (TccHttpParseUrl(tok, &entry, why, sizeof(why)) &&
			UrlUnder(url, &entry))
			return true;
	}
	return false;
}

/*
 * Checks that a participant URL is an absolute http or https URL with a
 * host, no credentials and no white space, inside tcc.allowed_urls.  The
 * path checked is the one libcurl sends, dot segments resolved (http.c).
 */
void
TccValidateUrl(const char *url, const char *what)
{
	const char *rest;
	size_t		hostlen;
	char		why[128];
	TccUrl		parts;

	if (strlen(url) > TCC_MAX_URL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is longer than %d bytes", what, TCC_MAX_URL)));
	for (const char *p = url; *p; p++)
	{
		if ((unsigned char) *p <= ' ' || (unsigned char) *p >= 0x7F)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must be printable ASCII without white space",
							what),
					 errhint("Percent-encode other characters; write international host names in punycode.")));
	}
	if (pg_strncasecmp(url, "http://", 7) == 0)
		rest = url + 7;
	else if (pg_strncasecmp(url, "https://", 8) == 0)
		rest = url + 8;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be an http or https URL", what)));

	hostlen = strcspn(rest, "/?#");
	if (hostlen == 0 || rest[0] == ':')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has no host", what)));
	if (memchr(rest, '@', hostlen) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not contain credentials", what),
				 errhint("Pass credentials in the headers argument of tcc_branch.")));
	if (!TccHttpParseUrl(url, &parts, why, sizeof(why)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is not a valid URL: %s", what, why)));
	if (tcc_allowed_urls != NULL && tcc_allowed_urls[0] != '\0' &&
		PathAmbiguous(parts.path))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has an encoded dot segment, an encoded slash or a backslash in its path",
						what),
				 errhint("With tcc.allowed_urls set, paths must be unambiguous.")));
	if (!UrlAllowed(&parts))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is not allowed by tcc.allowed_urls", what),
				 errdetail("The URL given was \"%.200s\".", url)));
}

/* Checks the payload size against tcc.max_payload_size. */
void
TccValidatePayload(int len)
{
	if ((int64) len > (int64) tcc_max_payload_size * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("payload of %d bytes exceeds tcc.max_payload_size (%d kB)",
						len, tcc_max_payload_size)));
}

/* Returns true if name is an HTTP token (RFC 9110 field name). */
static bool
IsToken(const char *name, int len)
{
	if (len == 0)
		return false;
	for (int i = 0; i < len; i++)
	{
		unsigned char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c)))
			return false;
	}
	return true;
}

/*
 * Returns true for headers the protocol sets itself, in any case and with
 * '_' for '-' (many servers map Tcc_Op onto Tcc-Op).
 */
static bool
IsReservedHeader(const char *name, int len)
{
	static const char *const reserved[] = {
		"idempotency-key", "content-type", "content-length", "host",
		"transfer-encoding", "connection", "user-agent", "expect",
		"traceparent", "tracestate"
	};
	char	   *dashed = pnstrdup(name, len);

	for (char *p = dashed; *p; p++)
		if (*p == '_')
			*p = '-';
	if (len >= 4 && pg_strncasecmp(dashed, "tcc-", 4) == 0)
		return true;
	for (int i = 0; i < lengthof(reserved); i++)
	{
		if ((int) strlen(reserved[i]) == len &&
			pg_strncasecmp(dashed, reserved[i], len) == 0)
			return true;
	}
	return false;
}

/*
 * Checks the headers argument (a JSON object of strings) and returns it as
 * "Name: value" lines.  Values never appear in error messages.
 */
char	  **
TccValidateHeaders(Datum headers_jsonb, int *nheaders)
{
	Jsonb	   *jb = DatumGetJsonbP(headers_jsonb);
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	  **lines;
	int			n = 0;
	char	   *name = NULL;
	int			namelen = 0;

	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("headers must be a JSON object of strings")));
	if (JB_ROOT_COUNT(jb) > TCC_MAX_HEADERS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at most %d headers are allowed", TCC_MAX_HEADERS)));

	lines = palloc0(sizeof(char *) * (JB_ROOT_COUNT(jb) + 1));
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			name = v.val.string.val;
			namelen = v.val.string.len;
			/* an invalid name may hold a whole "Name: secret" line: not shown */
			if (!IsToken(name, namelen) || namelen > TCC_MAX_HEADER_NAME)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("header name %d is not a valid HTTP field name", n + 1),
						 errdetail("Names are 1 to %d characters of letters, digits and !#$%%&'*+-.^_`|~.",
								   TCC_MAX_HEADER_NAME)));
			if (IsReservedHeader(name, namelen))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("header \"%s\" is set by tcc and cannot be given",
								pnstrdup(name, namelen)),
						 errdetail("Tcc-* headers, Idempotency-Key, Content-Type, the framing headers and the trace context belong to the protocol, also spelled with \"_\" for \"-\".")));
		}
		else if (tok == WJB_VALUE)
		{
			StringInfoData line;

			if (v.type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("value of header \"%s\" must be a string",
								pnstrdup(name, namelen))));
			for (int i = 0; i < v.val.string.len; i++)
			{
				char		c = v.val.string.val[i];

				if (c == '\r' || c == '\n' || c == '\0')
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("value of header \"%s\" contains CR, LF or NUL",
									pnstrdup(name, namelen))));
			}
			if (namelen + v.val.string.len + 2 > TCC_MAX_HEADER_LINE)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("header \"%s\" is longer than %d bytes",
								pnstrdup(name, namelen), TCC_MAX_HEADER_LINE)));
			initStringInfo(&line);
			appendBinaryStringInfo(&line, name, namelen);
			appendStringInfoString(&line, ": ");
			appendBinaryStringInfo(&line, v.val.string.val, v.val.string.len);
			lines[n++] = line.data;
		}
	}
	*nheaders = n;
	return lines;
}

/* Returns an interval in milliseconds (a month counts 30 days). */
int64
TccIntervalMs(Interval *timeout)
{
	int64		days = (int64) timeout->month * DAYS_PER_MONTH + timeout->day;

	return days * (USECS_PER_DAY / 1000) + timeout->time / 1000;
}

/* Checks that a timeout is positive and at most ten years. */
void
TccValidateTimeout(Interval *timeout, const char *what)
{
	int64		ms = TccIntervalMs(timeout);

	if (ms < 0 || (ms == 0 && timeout->time <= 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be positive", what)));
	if (ms > (int64) 3650 * (USECS_PER_DAY / 1000))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at most 10 years", what)));
}
/* Checks what every branch needs: a URL at least, a payload within limits. */
void
TccValidateBranch(TccBranchSpec *spec)
{
	if (!spec->urls[0] && !spec->urls[1] && !spec->urls[2])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a branch needs at least one of try_url, confirm_url and cancel_url")));
	if (spec->payload == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload must not be null"),
				 errhint("Pass '{}' for an empty payload.")));
	TccValidatePayload(strlen(spec->payload));
	if (spec->name && strlen(spec->name) > TCC_MAX_NAME)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("name is longer than %d bytes", TCC_MAX_NAME)));
	if (spec->pass_try_response && spec->protocol == TCC_PROTOCOL_DTM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("pass_try_response is not allowed with protocol dtm"),
				 errdetail("A DTM participant takes the bare payload in every call.")));
}

/*
 * Checks a branch's own call time limit, 1 ms to 1 hour
 * (docs/api.md#per-branch-policy); returns it in milliseconds.
 */
int
TccValidateBranchTimeout(Interval *timeout)
{
	int64		ms = TccIntervalMs(timeout);

	if (ms < 1 || ms > 3600 * 1000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout of a branch must be between 1 ms and 1 hour")));
	return (int) ms;
}

/* Checks a branch's own limit of failed confirm or cancel attempts. */
void
TccValidateMaxAttempts(int64 max_attempts)
{
	if (max_attempts < 1 || max_attempts > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be between 1 and 10000")));
}

/*
 * Reads the trace context a global transaction is begun with: traceparent,
 * else tcc.traceparent, and tracestate (docs/protocol.md#trace-context).
 * Returns false when there is none (tcc makes one); raises 22023 when one
 * is invalid, or a tracestate comes without a traceparent.
 */
bool
TccValidateTrace(const char *traceparent, const char *tracestate,
				 TccTrace *trace)
{
	const char *what = "traceparent";

	memset(trace, 0, sizeof(TccTrace));
	if (traceparent == NULL && tcc_traceparent != NULL &&
		tcc_traceparent[0] != '\0')
	{
		traceparent = tcc_traceparent;
		what = "tcc.traceparent";
	}
	if (traceparent == NULL)
	{
		if (tracestate != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("tracestate needs a traceparent")));
		return false;
	}
	if (!TccTraceParse(traceparent, trace))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is not a valid W3C traceparent", what),
				 errhint("A traceparent is 00-<trace id>-<parent id>-<flags>: 32, 16 and 2 lower-case hex digits, neither id all zeros.")));
	if (tracestate != NULL && !TccTraceStateValid(tracestate))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tracestate must be 1 to %d printable ASCII characters",
						TCC_TRACESTATE_MAX)));
	trace->state = tracestate ? pstrdup(tracestate) : NULL;
	return true;
}

/*
 * Checks a destination, "scheme://host[:port]" with scheme http or https
 * and nothing after the port, and returns it as the worker names
 * destinations: "scheme://host:port", the port made explicit
 * (docs/api.md#pausing-a-destination).
 */
char *
TccValidateDestination(const char *destination)
{
	char		why[128];
	TccUrl		parts;
	const char *rest;
	char	   *dest;

	rest = strstr(destination, "://");
	if (strlen(destination) >= TCC_DEST_LEN || rest == NULL ||
		strcspn(rest + 3, "/?#@") != strlen(rest + 3) ||
		!TccHttpParseUrl(destination, &parts, why, sizeof(why)) ||
		(strcmp(parts.scheme, "http") != 0 && strcmp(parts.scheme, "https") != 0) ||
		strlen(parts.host) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("destination must be scheme://host[:port]"),
				 errdetail("The destination given was \"%.200s\".", destination),
				 errhint("The scheme is http or https, without a path: for example https://pay.example:8443.")));
	dest = palloc(TCC_DEST_LEN);
	TccHttpDestination(destination, dest, TCC_DEST_LEN);
	return dest;
}

/* Error context of tcc_branches: which element of the array is wrong. */
static void
ElementContext(void *arg)
{
	errcontext("element %d of branches", *(int *) arg + 1);
}

/* Returns a JSON string value as a C string, NULL for JSON null. */
static char *
JsonText(JsonbValue *v, const char *key)
{
	if (v->type == jbvNull)
		return NULL;
	if (v->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" must be a string or null", key)));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * Returns a JSON number as an integer; 22023 unless it is a whole number
 * within int4 (a larger one saturates, to be refused as out of range).
 */
static int
JsonInt(JsonbValue *v)
{
	Numeric		num = v->val.numeric;
	Numeric		lo = int64_to_numeric(PG_INT32_MIN);
	Numeric		hi = int64_to_numeric(PG_INT32_MAX);

	if (!DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(num),
										  DirectFunctionCall2(numeric_trunc, NumericGetDatum(num),
																  Int32GetDatum(0)))))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"max_attempts\" must be a whole number")));
	if (DatumGetBool(DirectFunctionCall2(numeric_lt, NumericGetDatum(num),
										 NumericGetDatum(lo))))
		return PG_INT32_MIN;
	if (DatumGetBool(DirectFunctionCall2(numeric_gt, NumericGetDatum(num),
										 NumericGetDatum(hi))))
		return PG_INT32_MAX;
	return DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(num)));
}

/* Reads one element of tcc_branches' array into spec, checked. */
static void
ParseBranchElement(JsonbValue *elem, TccBranchSpec *spec)
{
	static const char *const url_keys[3] = {"try", "confirm", "cancel"};
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	memset(spec, 0, sizeof(TccBranchSpec));
	spec->payload = "{}";
	spec->protocol = TCC_PROTOCOL_TCC;
	if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("each branch must be a JSON object")));

	it = JsonbIteratorInit(elem->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		if (strcmp(key, "try") == 0 || strcmp(key, "confirm") == 0 ||
			strcmp(key, "cancel") == 0)
		{
			int			u = key[0] == 't' ? 0 : key[1] == 'o' ? 1 : 2;

			spec->urls[u] = JsonText(&v, url_keys[u]);
			if (spec->urls[u])
				TccValidateUrl(spec->urls[u], url_keys[u]);
		}
		else if (strcmp(key, "payload") == 0)
		{
			Jsonb	   *jb;

			if (v.type == jbvNull)
				spec->payload = NULL;
			else
			{
				jb = JsonbValueToJsonb(&v);
				spec->payload = JsonbToCString(NULL, &jb->root, VARSIZE(jb));
			}
		}
		else if (strcmp(key, "name") == 0)
			spec->name = JsonText(&v, "name");
		else if (strcmp(key, "headers") == 0)
		{
			if (v.type != jbvNull)
				spec->headers = TccValidateHeaders(JsonbPGetDatum(JsonbValueToJsonb(&v)),
												   &spec->nheaders);
		}
		else if (strcmp(key, "protocol") == 0)
		{
			char	   *name = JsonText(&v, "protocol");

			if (name == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("protocol must be tcc or dtm")));
			spec->protocol = TccProtocolFromName(name);
		}
		else if (strcmp(key, "timeout") == 0 && v.type == jbvString)
		{
			char	   *text = JsonText(&v, "timeout");

			spec->timeout_ms = TccValidateBranchTimeout(
				DatumGetIntervalP(DirectFunctionCall3(interval_in,
													  CStringGetDatum(text),
													  ObjectIdGetDatum(InvalidOid),
													  Int32GetDatum(-1))));
		}
		else if (strcmp(key, "max_attempts") == 0 && v.type == jbvNumeric)
			TccValidateMaxAttempts(spec->max_attempts = JsonInt(&v));
		else if (strcmp(key, "pass_try_response") == 0 && v.type == jbvBool)
			spec->pass_try_response = v.val.boolean;
		else if (strcmp(key, "timeout") == 0 || strcmp(key, "max_attempts") == 0 ||
				 strcmp(key, "pass_try_response") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" must be %s", key,
							key[0] == 't' ? "an interval as a string" :
							key[0] == 'm' ? "a number" : "true or false")));
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown key \"%s\" in a branch", key),
					 errhint("The keys are try, confirm, cancel, payload, name, headers, protocol, timeout, max_attempts and pass_try_response.")));
	}
	TccValidateBranch(spec);
}

/*
 * Reads and checks tcc_branches' array; returns the branches and sets n.
 * Nothing is written and no call made unless every element is valid.
 */
TccBranchSpec *
TccValidateBranches(Jsonb *branches, int *n)
{
	TccBranchSpec *specs;
	ErrorContextCallback context;
	int			i = 0;

	if (!JB_ROOT_IS_ARRAY(branches) || JB_ROOT_IS_SCALAR(branches))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("branches must be a JSON array of objects")));
	*n = JB_ROOT_COUNT(branches);
	if (*n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("branches must not be empty")));
	if (*n > tcc_max_branches_per_call)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("at most %d branches are allowed in one call",
						tcc_max_branches_per_call),
				 errhint("See tcc.max_branches_per_call.")));

	specs = palloc(sizeof(TccBranchSpec) * *n);
	context.callback = ElementContext;
	context.arg = &i;
	context.previous = error_context_stack;
	error_context_stack = &context;
	for (i = 0; i < *n; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(&branches->root, i);

		ParseBranchElement(elem, &specs[i]);
	}
	error_context_stack = context.previous;
	return specs;
}
