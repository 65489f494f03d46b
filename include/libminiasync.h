/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libminiasync.h -- umbrella header of miniasync-rs, a drop-in replacement
 * for libminiasync 0.2.1: futures, chains, virtual data movers (vdm), the
 * synchronous and threads movers and the runtime.
 *
 * Link with `pkg-config --libs libminiasync` (-lminiasync).
 */

#ifndef LIBMINIASYNC_H
#define LIBMINIASYNC_H 1

#include <stddef.h>
#include <stdio.h>

#include "libminiasync/future.h"
#include "libminiasync/vdm.h"
#include "libminiasync/data_mover_threads.h"
#include "libminiasync/data_mover_sync.h"
#include "libminiasync/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* LIBMINIASYNC_H */
