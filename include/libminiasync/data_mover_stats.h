/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * data_mover_stats.h -- what a mover did: operations by type, bytes, where
 * they ran, CPU fallbacks by reason, device events. An extension of
 * miniasync-rs (upstream has no statistics); see data_mover_dml_get_stats(3).
 *
 * Set `size` to sizeof the struct before a call: the library fills at most
 * that many bytes (a program built against an older, shorter struct keeps
 * working) and writes back how many it filled.
 */

#ifndef DATA_MOVER_STATS_H
#define DATA_MOVER_STATS_H 1

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "data_mover_stats_types.h"

#ifdef __cplusplus
}
#endif

#endif /* DATA_MOVER_STATS_H */
