/*-------------------------------------------------------------------------
 *
 * util.h
 *	  Small helpers every layer uses (util.c).
 *
 * Copyright (c) 2026, the tcc authors
 *
 * IDENTIFICATION
 *	  src/util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef TCC_UTIL_H
#define TCC_UTIL_H

extern char *TccClip(const char *s, int max);
extern void TccStrlcpy(char *dst, const char *src, size_t size);
extern ErrorData *TccInSubtransaction(void (*fn) (void *arg), void *arg);

#endif							/* TCC_UTIL_H */
