/*
 * devn-noentry -- a shared object without the entry symbol (it exports a
 * near miss), which the shim must refuse.
 */
#include <pktkit/legacy_abi.h>

PKTKIT_LG_EXPORT const int pktkit_legacy_entry_v0 = 1;
