/*
** The author disclaims copyright to this source code. In place of a legal notice, here is a
** blessing: may you do good and not evil.
**
*************************************************************************************************
** tsread.h: next document of a token stream (lib/tokstream.h format v1) for `cm-shards pack`:
** lib's ts_next with a vectorised vocabulary check and, optionally, no aligned copy of the ids.
** Open and close the TsReader with lib's ts_open / ts_close.
*/
#ifndef CM_SHARDS_TSREAD_H
#define CM_SHARDS_TSREAD_H

#include "tokstream.h"  // defines: TsReader, TsDoc

/* 1 and *d filled (valid until the next call), 0 at a clean end, -1 with r->err set. With raw
** not NULL: *raw = the ids in the read buffer (u32 little-endian, maybe unaligned), d->ids NULL. */
int tsr_next(TsReader *r, TsDoc *d, const unsigned char **raw);

#endif
