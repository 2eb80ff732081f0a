/*
 * devn-abi2 -- a driver that claims ABI major 2, which the shim must refuse
 * before calling anything (its init aborts the process if it is called).
 */
#include <stdlib.h>

#include <pktkit/legacy_abi.h>

static int
abi2_init(const struct pktkit_lg_services *svc, struct pktkit_lg_stack *stack,
    struct pktkit_lg_dev **devp, const struct pktkit_lg_funcs **funcsp,
    struct pktkit_lg_devinfo *info)
{
	(void)svc; (void)stack; (void)devp; (void)funcsp; (void)info;
	abort();
}

static void
abi2_shutdown(struct pktkit_lg_dev *sc)
{
	(void)sc;
	abort();
}

static const struct pktkit_lg_option abi2_options[] = {
	{ NULL, NULL, 0, 0 },
};

PKTKIT_LG_EXPORT const struct pktkit_lg_entry pktkit_legacy_entry = {
	.le_abi_major = 2,
	.le_abi_minor = 0,
	.le_name = "devn-abi2",
	.le_prefix = "en",
	.le_description = "claims ABI major 2",
	.le_options = abi2_options,
	.le_init = abi2_init,
	.le_shutdown = abi2_shutdown,
};
