/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libminiasync-vdm-dml.h -- umbrella header of the DSA mover library
 * (link with `pkg-config --libs libminiasync-vdm-dml`). No Intel DML
 * headers are needed.
 */

#ifndef MINIASYNC_VDM_DML_H
#define MINIASYNC_VDM_DML_H 1

#include <stddef.h>
#include <stdio.h>

#include "libminiasync-vdm-dml/data_mover_dml.h"

#endif /* MINIASYNC_VDM_DML_H */
