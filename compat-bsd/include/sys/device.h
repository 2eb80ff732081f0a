/*
 * sys/device.h -- autoconf(9) for ported drivers (compat-bsd).
 *
 * A driver declares its attachment with CFATTACH_DECL_NEW (or 3_NEW), as in
 * NetBSD; the Rust side (pktkit_bsd::PortedDriver) names that cfattach,
 * calls its match function with the bus's attach arguments (a struct
 * pci_attach_args for PCI drivers), allocates the softc (ca_devsize bytes,
 * zeroed) and calls attach.  Units are numbered per driver name by the
 * stack, so device_xname() is the interface name (rtk0, bnull1, ...).
 */
#ifndef _SYS_DEVICE_H_
#define _SYS_DEVICE_H_

#include <sys/types.h>

typedef struct device	*device_t;
typedef struct cfdata	*cfdata_t;

struct cfdata {
	const char	*cf_name;	/* driver name */
	const char	*cf_atname;	/* attachment name */
	int		cf_unit;
	int		cf_fstate;
	int		*cf_loc;
	int		cf_flags;
};

#define DVACT_DEACTIVATE	1
#define DETACH_FORCE		0x01
#define DETACH_QUIET		0x02
#define DETACH_SHUTDOWN		0x04
#define DVF_DETACH_SHUTDOWN	0x0080
#define DVF_ACTIVE		0x0001

struct cfattach {
	const char	*ca_name;
	size_t		ca_devsize;
	int		(*ca_match)(device_t, cfdata_t, void *);
	void		(*ca_attach)(device_t, device_t, void *);
	int		(*ca_detach)(device_t, int);
	int		(*ca_activate)(device_t, devact_t);
	int		(*ca_rescan)(device_t, const char *, const int *);
	void		(*ca_childdetached)(device_t, device_t);
	int		ca_flags;
};

#define CFATTACH_DECL3_NEW(name, ddsize, matfn, attfn, detfn, actfn,	\
    rescanfn, chdetfn, flags)						\
const struct cfattach __CONCAT(name, _ca) = {				\
	.ca_name = __STRING(name),					\
	.ca_devsize = (ddsize),						\
	.ca_match = (matfn),						\
	.ca_attach = (attfn),						\
	.ca_detach = (detfn),						\
	.ca_activate = (actfn),						\
	.ca_rescan = (rescanfn),					\
	.ca_childdetached = (chdetfn),					\
	.ca_flags = (flags),						\
}
#define CFATTACH_DECL_NEW(name, ddsize, matfn, attfn, detfn, actfn)	\
	CFATTACH_DECL3_NEW(name, ddsize, matfn, attfn, detfn, actfn,	\
	    NULL, NULL, 0)
#define CFATTACH_DECL2_NEW(name, ddsize, matfn, attfn, detfn, actfn,	\
    rescanfn, chdetfn)							\
	CFATTACH_DECL3_NEW(name, ddsize, matfn, attfn, detfn, actfn,	\
	    rescanfn, chdetfn, 0)

struct device {
	char		dv_xname[16];	/* interface name: prefix + unit */
	int		dv_unit;
	int		dv_flags;	/* DVF_* */
	void		*dv_private;	/* the softc */
	device_t	dv_parent;
	const struct cfattach *dv_cfattach;
	struct cfdata	dv_cfdata;
	void		*dv_pktkit;	/* the adapter's device context */
};

static inline void *device_private(device_t d) { return d->dv_private; }
static inline const char *device_xname(device_t d) { return d->dv_xname; }
static inline int device_unit(device_t d) { return d->dv_unit; }
static inline device_t device_parent(device_t d) { return d->dv_parent; }
static inline bool device_is_active(device_t d)
{
	return (d->dv_flags & DVF_ACTIVE) != 0;
}
static inline bool device_has_power(device_t d) { (void)d; return true; }
bool	device_is_a(device_t, const char *);

/* Autoconfiguration messages, to the stack's log. */
void	aprint_normal(const char *, ...) __printflike(1, 2);
void	aprint_naive(const char *, ...) __printflike(1, 2);
void	aprint_verbose(const char *, ...) __printflike(1, 2);
void	aprint_debug(const char *, ...) __printflike(1, 2);
void	aprint_error(const char *, ...) __printflike(1, 2);
void	aprint_normal_dev(device_t, const char *, ...) __printflike(2, 3);
void	aprint_verbose_dev(device_t, const char *, ...) __printflike(2, 3);
void	aprint_debug_dev(device_t, const char *, ...) __printflike(2, 3);
void	aprint_error_dev(device_t, const char *, ...) __printflike(2, 3);
#define aprint_naive_dev(d, ...)	aprint_debug_dev(d, __VA_ARGS__)

/* Power management: there is no suspend in a userspace stack. */
typedef int pmf_qual_t;
#define PMF_FN_ARGS	, const pmf_qual_t *qual
#define PMF_FN_PROTO	, const pmf_qual_t *
#define PMF_FN_CALL	, qual
static inline bool
pmf_device_register1(device_t d, bool (*s)(device_t, const pmf_qual_t *),
    bool (*r)(device_t, const pmf_qual_t *), bool (*sh)(device_t, int))
{
	(void)d; (void)s; (void)r; (void)sh;
	return true;
}
#define pmf_device_register(d, s, r)	pmf_device_register1((d), (s), (r), NULL)
static inline void pmf_device_deregister(device_t d) { (void)d; }
struct ifnet;
static inline void
pmf_class_network_register(device_t d, struct ifnet *ifp)
{
	(void)d; (void)ifp;
}

int	config_detach(device_t, int);

/*
 * A driver's cfdriver, which config(1) generates in NetBSD; a port that
 * looks its devices up by unit (device_lookup_private) declares it with
 * CFDRIVER_DECL(name, DV_IFNET, NULL).
 */
enum devclass { DV_DULL, DV_CPU, DV_DISK, DV_IFNET, DV_TAPE, DV_TTY,
	DV_AUDIODEV, DV_DISPLAYDEV, DV_BUS, DV_VIRTUAL };
typedef enum devclass devclass_t;

struct cfdriver {
	const char	*cd_name;
	devclass_t	cd_class;
	const char * const *cd_attrs;
};
#define CFDRIVER_DECL(name, class, attrs)				\
struct cfdriver __CONCAT(name, _cd) = {					\
	.cd_name = __STRING(name),					\
	.cd_class = (class),						\
	.cd_attrs = (attrs),						\
}

/* The attached device of that driver with that unit, or NULL. */
device_t device_lookup(struct cfdriver *, int);
void	*device_lookup_private(struct cfdriver *, int);

/*
 * proplib(3), as far as drivers read their device's properties: a
 * device's dictionary holds the options it was given (-d name,key=value).
 * A getter returns false, leaving *v alone, when the key is absent or its
 * value is not of the type asked for.
 */
typedef struct prop_dictionary *prop_dictionary_t;
prop_dictionary_t device_properties(device_t);
bool	prop_dictionary_get_bool(prop_dictionary_t, const char *, bool *);
bool	prop_dictionary_get_int32(prop_dictionary_t, const char *, int32_t *);
bool	prop_dictionary_get_uint32(prop_dictionary_t, const char *, uint32_t *);
bool	prop_dictionary_get_uint64(prop_dictionary_t, const char *, uint64_t *);

/*
 * pktkit extension: the options given to the driver (-d name,key=value),
 * for pseudo-devices that have no hardware to ask: the value of key as an
 * integer, or def when absent or not a number.
 */
long	pktkit_device_getprop_int(device_t, const char *, long);
static inline void null_childdetached(device_t a, device_t b)
{
	(void)a; (void)b;
}

#endif /* _SYS_DEVICE_H_ */
