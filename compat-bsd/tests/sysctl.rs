//! sysctl(9) as drivers call it: `sysctl_createv` through its C variable
//! argument list, every bad argument refused with NetBSD's errno and
//! nothing made, values read and set through bound variables, node-held
//! values and handlers that call `sysctl_lookup`, and `sysctl_teardown`
//! removing exactly the nodes of its log.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::ptr;

use pktkit_bsd::ctx::{DevCtx, Entered};

mod support;
use pktkit_bsd::sys::{self, sysctllog, sysctlnode};
use pktkit_bsd::sysctl;
use support::setup;

type Handler = unsafe extern "C" fn(
    *const c_int,
    c_uint,
    *mut c_void,
    *mut usize,
    *const c_void,
    usize,
    *const c_int,
    *mut sys::lwp,
    *const sysctlnode,
) -> c_int;

extern "C" {
    /// csrc/kern_sysctl.c.
    fn sysctl_createv(
        log: *mut *mut sysctllog,
        cflags: c_int,
        rnode: *const *const sysctlnode,
        cnode: *mut *const sysctlnode,
        flags: c_int,
        ty: c_int,
        name: *const c_char,
        desc: *const c_char,
        func: Option<Handler>,
        qv: u64,
        newp: *mut c_void,
        newlen: usize,
        ...
    ) -> c_int;
}

const EOL: c_int = sys::CTL_EOL;
const CREATE: c_int = sys::CTL_CREATE;
const HW: c_int = sys::CTL_HW as c_int;
const RW: c_int = sys::CTLFLAG_READWRITE as c_int;
const NODE: c_int = sys::CTLTYPE_NODE as c_int;
const INT: c_int = sys::CTLTYPE_INT as c_int;
const BOOL: c_int = sys::CTLTYPE_BOOL as c_int;
const QUAD: c_int = sys::CTLTYPE_QUAD as c_int;
const STRING: c_int = sys::CTLTYPE_STRING as c_int;

/// A node NAME under the top-level node `first`, made through `log`:
/// the errno and the node.
fn top_node(
    log: &mut *mut sysctllog,
    name: &std::ffi::CStr,
    first: c_int,
) -> (c_int, *const sysctlnode) {
    let mut rnode: *const sysctlnode = ptr::null();
    // SAFETY: the pointers are live; the name list ends with CTL_EOL.
    let e = unsafe {
        sysctl_createv(
            log,
            0,
            ptr::null(),
            &mut rnode,
            0,
            NODE,
            name.as_ptr(),
            c"the device".as_ptr(),
            None,
            0,
            ptr::null_mut(),
            0,
            first,
            CREATE,
            EOL,
        )
    };
    (e, rnode)
}

/// The node hw.NAME, made through `log`.
fn hw_node(log: &mut *mut sysctllog, name: &std::ffi::CStr) -> *const sysctlnode {
    let (e, rnode) = top_node(log, name, HW);
    assert_eq!(e, 0);
    assert!(!rnode.is_null());
    rnode
}

/// The device node hw.dev0, made through `log`.
fn device_node(log: &mut *mut sysctllog) -> *const sysctlnode {
    hw_node(log, c"dev0")
}

/// A leaf under `parent` (`CTL_CREATE, CTL_EOL`): the errno and the node.
#[allow(clippy::too_many_arguments)]
fn leaf_node(
    log: &mut *mut sysctllog,
    parent: *const sysctlnode,
    flags: c_int,
    ty: c_int,
    name: &std::ffi::CStr,
    func: Option<Handler>,
    qv: u64,
    data: *mut c_void,
    size: usize,
) -> (c_int, *const sysctlnode) {
    let mut cnode: *const sysctlnode = ptr::null();
    // SAFETY: the pointers are live; the name list ends with CTL_EOL.
    let e = unsafe {
        sysctl_createv(
            log,
            0,
            &parent,
            &mut cnode,
            flags,
            ty,
            name.as_ptr(),
            ptr::null(),
            func,
            qv,
            data,
            size,
            CREATE,
            EOL,
        )
    };
    (e, cnode)
}

fn values(ctx: &DevCtx) -> BTreeMap<String, (String, bool)> {
    sysctl::leaves(ctx, "dev0")
        .into_iter()
        .map(|l| {
            let v = sysctl::read(ctx, &l).expect("read");
            (l.path.clone(), (v, l.writable))
        })
        .collect()
}

fn set(ctx: &DevCtx, name: &str, value: &str) -> Result<(), String> {
    let leaves = sysctl::leaves(ctx, "dev0");
    let l = leaves.iter().find(|l| l.path == name).expect(name);
    sysctl::write(ctx, l, value)
}

/// A handler as wm(4) writes one: a copy of the node pointed at a local,
/// `sysctl_lookup`, then the driver checks and applies the new value.
unsafe extern "C" fn even_only(
    name: *const c_int,
    namelen: c_uint,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *const c_void,
    newlen: usize,
    oname: *const c_int,
    l: *mut sys::lwp,
    rnode: *const sysctlnode,
) -> c_int {
    // SAFETY: the NetBSD convention: rnode is the node, its data our int.
    unsafe {
        let mut node = *rnode;
        let var = node.sysctl_data.cast::<i32>();
        let mut v = *var;
        node.sysctl_data = (&mut v as *mut i32).cast();
        let e = sysctl::sysctl_lookup(name, namelen, oldp, oldlenp, newp, newlen, oname, l, &node);
        if e != 0 || newp.is_null() {
            return e;
        }
        if v % 2 != 0 {
            return libc::EINVAL;
        }
        *var = v;
        0
    }
}

#[test]
fn leaves_bound_held_and_handled_read_and_set() {
    let ctx = setup("sysctl-values");
    let mut knob: i32 = 5;
    let mut flag: bool = false;
    let mut even: i32 = 4;
    let mut name_buf = *b"dev0 name\0";
    let mut log: *mut sysctllog = ptr::null_mut();
    {
        let _e = Entered::new(&ctx);
        let r = device_node(&mut log);
        let int = (&mut knob as *mut i32).cast();
        assert_eq!(
            leaf_node(&mut log, r, RW, INT, c"knob", None, 0, int, 4).0,
            0
        );
        let b = (&mut flag as *mut bool).cast();
        assert_eq!(
            leaf_node(&mut log, r, RW, BOOL, c"flag", None, 0, b, 0).0,
            0
        );
        assert_eq!(
            leaf_node(&mut log, r, 0, QUAD, c"held", None, 42, ptr::null_mut(), 0).0,
            0
        );
        let ev = (&mut even as *mut i32).cast();
        assert_eq!(
            leaf_node(&mut log, r, RW, INT, c"even", Some(even_only), 0, ev, 0).0,
            0
        );
        let s = name_buf.as_mut_ptr().cast();
        assert_eq!(
            leaf_node(&mut log, r, 0, STRING, c"desc", None, 0, s, 10).0,
            0
        );
        // No buffer size: read up to the NUL.
        assert_eq!(
            leaf_node(&mut log, r, 0, STRING, c"desc0", None, 0, s, 0).0,
            0
        );
    }
    let v = values(&ctx);
    assert_eq!(v["desc0"], ("dev0 name".into(), false));
    assert_eq!(v["knob"], ("5".into(), true));
    assert_eq!(v["flag"], ("0".into(), true));
    assert_eq!(v["held"], ("42".into(), false));
    assert_eq!(v["even"], ("4".into(), true));
    assert_eq!(v["desc"], ("dev0 name".into(), false));

    set(&ctx, "knob", "-17").expect("int");
    assert_eq!(knob, -17, "the bound variable changed");
    set(&ctx, "flag", "1").expect("bool");
    assert!(flag);
    set(&ctx, "even", "10").expect("handler");
    assert_eq!(even, 10);
    // Refused, and nothing changes.
    for (name, value, why) in [
        ("knob", "x", "expected a 32-bit integer"),
        ("knob", "4294967296", "expected a 32-bit integer"),
        ("flag", "2", "expected 0 or 1"),
        ("even", "7", "EINVAL"),
        ("held", "1", "read-only"),
        ("desc", "y", "read-only"),
    ] {
        let e = set(&ctx, name, value).expect_err(value);
        assert!(e.contains(why), "{name}={value}: {e}");
    }
    assert_eq!((knob, flag, even), (-17, true, 10));
    // SAFETY: log came from sysctl_createv.
    unsafe { sysctl::sysctl_teardown(&mut log) };
    assert!(log.is_null());
    assert!(values(&ctx).is_empty());
}

#[test]
fn bad_arguments_are_refused_and_make_nothing() {
    let ctx = setup("sysctl-bad");
    let mut knob: i32 = 0;
    let int = (&mut knob as *mut i32).cast();
    let mut log: *mut sysctllog = ptr::null_mut();
    let _e = Entered::new(&ctx);
    let r = device_node(&mut log);
    assert_eq!(
        leaf_node(&mut log, r, RW, INT, c"knob", None, 0, int, 4).0,
        0
    );
    let before = values(&ctx);

    // (type, name, variable size, errno): a bad type, names that are no
    // node names, a duplicate, a variable of the wrong size, a writable
    // string.
    for (ty, name, size, errno) in [
        (9, c"weird", 4, libc::EINVAL),
        (INT, c"a.b", 4, libc::EINVAL),
        (INT, c"", 4, libc::EINVAL),
        (INT, c"9lives", 4, libc::EINVAL),
        (INT, c"knob", 4, libc::EEXIST),
        (INT, c"wide", 8, libc::EINVAL),
        (STRING, c"str", 4, libc::EINVAL),
    ] {
        let e = leaf_node(&mut log, r, RW, ty, name, None, 0, int, size).0;
        assert_eq!(e, errno, "{name:?}");
    }
    // A leaf is no parent.
    let (e, knob_node) = leaf_node(&mut log, r, RW, INT, c"other", None, 0, int, 4);
    assert_eq!(e, 0);
    assert_eq!(
        leaf_node(&mut log, knob_node, RW, INT, c"under", None, 0, int, 4).0,
        libc::ENOTDIR
    );
    // A top-level node that does not exist.
    let (e, _) = top_node(&mut log, c"x", 99);
    assert_eq!(e, libc::ENOENT);
    // No CTL_EOL within CTL_MAXNAME names (12): refused before reading on.
    // SAFETY: 13 names are passed, so the 12 read exist.
    let e = unsafe {
        sysctl_createv(
            &mut log,
            0,
            ptr::null(),
            ptr::null_mut(),
            0,
            NODE,
            c"deep".as_ptr(),
            ptr::null(),
            None,
            0,
            ptr::null_mut(),
            0,
            HW,
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
            9,
            10,
            11,
            12,
        )
    };
    assert_eq!(e, libc::EINVAL);

    let mut after = values(&ctx);
    assert!(after.remove("other").is_some());
    assert_eq!(after, before, "the refusals made nothing");
    // SAFETY: log came from sysctl_createv.
    unsafe { sysctl::sysctl_teardown(&mut log) };
}

#[test]
fn teardown_removes_exactly_the_nodes_of_its_log() {
    let ctx = setup("sysctl-logs");
    let mut a: i32 = 1;
    let mut b: i32 = 2;
    let mut log_a: *mut sysctllog = ptr::null_mut();
    let mut log_b: *mut sysctllog = ptr::null_mut();
    let _e = Entered::new(&ctx);
    let r = device_node(&mut log_a);
    let pa = (&mut a as *mut i32).cast();
    let pb = (&mut b as *mut i32).cast();
    assert_eq!(leaf_node(&mut log_a, r, RW, INT, c"a", None, 0, pa, 4).0, 0);
    assert_eq!(leaf_node(&mut log_b, r, RW, INT, c"b", None, 0, pb, 4).0, 0);
    // A second node under hw, made through log b.
    let r2 = hw_node(&mut log_b, c"other0");
    assert_eq!(
        leaf_node(&mut log_b, r2, RW, INT, c"c", None, 0, pb, 4).0,
        0
    );
    let names = |ctx: &DevCtx| values(ctx).into_keys().collect::<Vec<_>>();
    assert_eq!(names(&ctx), ["a", "b", "hw.other0.c"]);

    // SAFETY: log_b came from sysctl_createv.
    unsafe { sysctl::sysctl_teardown(&mut log_b) };
    assert!(log_b.is_null());
    assert_eq!(names(&ctx), ["a"], "b's nodes went, a's stayed");
    // SAFETY: as above; a second teardown of a cleared log is a no-op.
    unsafe {
        sysctl::sysctl_teardown(&mut log_a);
        sysctl::sysctl_teardown(&mut log_a);
    }
    assert!(names(&ctx).is_empty());
    assert!(
        !ctx.sysctl.lock().unwrap().is_empty(),
        "the implicit hw node stays"
    );
}
