/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * dml_api.c -- the DSA mover's documented usage, verbatim:
 *
 *   struct data_mover_dml *dmd = data_mover_dml_new();
 *   struct vdm *dml_mover = data_mover_dml_get_vdm(dmd);
 *   struct vdm_operation_future f = vdm_memcpy(dml_mover, dest, src,
 *           copy_size, MINIASYNC_DML_F_MEM_DURABLE);
 *
 * Built three times by mk/dml.mk: as gnu99 (the C suite), as strict C99
 * (-std=c99 -pedantic) and as C++11. It uses whatever path AUTO picks on
 * this machine, and checks the copy, the output and the mover's contract
 * values (capabilities 3, ASYNC property, MINIASYNC_DML_F_MEM_DURABLE ==
 * VDM_F_MEM_DURABLE).
 */
#include <libminiasync-vdm-dml.h>
#include <stdlib.h>
#include <string.h>

int
main(void)
{
	size_t copy_size = 1 << 20;
	char *src = (char *)malloc(copy_size);
	char *dest = (char *)malloc(copy_size);
	if (src == NULL || dest == NULL)
		return 2;
	for (size_t i = 0; i < copy_size; i++)
		src[i] = (char)(i * 31 + 7);
	memset(dest, 0, copy_size);

	struct data_mover_dml *dmd = data_mover_dml_new();
	struct vdm *dml_mover = data_mover_dml_get_vdm(dmd);
	struct vdm_operation_future f = vdm_memcpy(dml_mover, dest, src, copy_size, MINIASYNC_DML_F_MEM_DURABLE);

	int bad = 0;
	if (dmd == NULL || dml_mover != (struct vdm *)dmd)
		bad |= 1;
	if (MINIASYNC_DML_F_MEM_DURABLE != VDM_F_MEM_DURABLE)
		bad |= 2;
	if (dml_mover->capabilities != (VDM_F_MEM_DURABLE | VDM_F_NO_CACHE_HINT))
		bad |= 4;
	if (future_has_property(FUTURE_AS_RUNNABLE(&f), FUTURE_PROPERTY_ASYNC) != 1)
		bad |= 8;
	FUTURE_BUSY_POLL(&f);
	if (FUTURE_STATE(&f) != FUTURE_STATE_COMPLETE || f.output.result != VDM_SUCCESS)
		bad |= 16;
	if (f.output.type != VDM_OPERATION_MEMCPY || f.output.output.memcpy.dest != dest)
		bad |= 32;
	if (memcmp(dest, src, copy_size) != 0)
		bad |= 64;
	data_mover_dml_delete(dmd);
	data_mover_dml_delete(NULL);
	if (data_mover_dml_get_vdm(NULL) != NULL)
		bad |= 128;
	free(src);
	free(dest);
	if (bad)
		fprintf(stderr, "dml_api: failures 0x%x\n", bad);
	else
		printf("dml_api: ok\n");
	return bad ? 1 : 0;
}
