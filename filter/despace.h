// SPDX-License-Identifier: MIT
/*
** despace.h: a copy of a text without its ASCII white space (space, \t, \n, \v, \f, \r), for
** the exact-dedup fingerprint (dedup.h). 16 bytes at a time with SSSE3 byte shuffles where the
** build has them, a byte at a time otherwise; the same bytes either way.
*/
#ifndef CM_FILTER_DESPACE_H
#define CM_FILTER_DESPACE_H

#include <stddef.h>

/* Copy s[0..n) without white space to d (room for n bytes); returns the bytes written. */
size_t despace(char *d, const char *s, size_t n);

#endif
