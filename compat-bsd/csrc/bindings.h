/*
 * What bindgen reads to give the Rust side the KPI structs (build.rs).
 */
#include <sys/param.h>
#include <sys/systm.h>
#include <sys/mbuf.h>
#include <sys/device.h>
#include <sys/callout.h>
#include <sys/evcnt.h>
#include <sys/mutex.h>
#include <sys/bus.h>
#include <sys/workqueue.h>
#include <sys/sysctl.h>
#include <net/if.h>
#include <net/if_ether.h>
#include <net/if_media.h>
#include <dev/pci/pcivar.h>
#include <dev/mii/miivar.h>
#include <pktkit/ported.h>
#include "pktkit_glue.h"
