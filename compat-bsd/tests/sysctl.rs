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
    let l = sysctl::leaf(ctx, "dev0", name).expect(name);
    sysctl::write(ctx, &l, value)
}

/// What [`even_only`] saw when called for a node: namelen, `*oldlenp` on
/// entry, the first three names of oname, and whether name pointed past
/// them.
type Seen = (c_uint, usize, [c_int; 3], bool);
static SEEN: std::sync::Mutex<Vec<(usize, Seen)>> = std::sync::Mutex::new(Vec::new());

/// What [`even_only`] saw on its last call for `node`.
fn seen(node: *const sysctlnode) -> Seen {
    let all = SEEN.lock().unwrap();
    let last = all.iter().rev().find(|(n, _)| *n == node as usize);
    last.expect("the handler was called").1
}

/// The `u_quad_t` argument that makes [`even_only`] answer with no bytes.
const NO_BYTES: u64 = 1;

/// A handler as wm(4) writes one: it reads `*oldlenp` and refuses names
/// below the leaf as NetBSD handlers may (recording what it got, nodes
/// three deep), then a copy of the node pointed at a local,
/// `sysctl_lookup`, and the driver checks and applies the new value. A
/// node made with [`NO_BYTES`] answers with no bytes at all.
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
    // SAFETY: the NetBSD convention: oldlenp is always valid, oname holds
    // the full MIB (three names for hw.dev0.LEAF) and name its end; rnode
    // is the node, its data our int.
    unsafe {
        let buflen = *oldlenp;
        let mib = [*oname, *oname.add(1), *oname.add(2)];
        let past = name == oname.add(3);
        SEEN.lock()
            .unwrap()
            .push((rnode as usize, (namelen, buflen, mib, past)));
        if namelen != 0 {
            return libc::EINVAL;
        }
        if (*rnode).sysctl_qdata as u64 == NO_BYTES {
            *oldlenp = 0;
            return 0;
        }
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
    let nodes = ctx.sysctl.lock().unwrap().len();

    // (type, name, variable size, errno): a bad type, names that are no
    // node names (NetBSD's rule), a name too long, a variable of the wrong
    // size, a writable string.
    for (ty, name, size, errno) in [
        (9, c"weird", 4, libc::EINVAL),
        (INT, c"a.b", 4, libc::EINVAL),
        (INT, c"", 4, libc::EINVAL),
        (INT, c"9lives", 4, libc::EINVAL),
        (INT, c"sp ace", 4, libc::EINVAL),
        (
            INT,
            c"thirty-two-characters-long-name0",
            4,
            libc::ENAMETOOLONG,
        ),
        (INT, c"wide", 8, libc::EINVAL),
        (STRING, c"str", 4, libc::EINVAL),
    ] {
        let e = leaf_node(&mut log, r, RW, ty, name, None, 0, int, size).0;
        assert_eq!(e, errno, "{name:?}");
    }
    // The name taken by a leaf with another handler.
    let e = leaf_node(&mut log, r, RW, INT, c"knob", Some(even_only), 0, int, 4).0;
    assert_eq!(e, libc::EEXIST);
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
    // SAFETY: 12 names are passed, all of them read.
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
        )
    };
    assert_eq!(e, libc::ENAMETOOLONG);

    let mut after = values(&ctx);
    assert!(after.remove("other").is_some());
    assert_eq!(after, before, "the refusals changed no leaf");
    assert_eq!(
        ctx.sysctl.lock().unwrap().len(),
        nodes + 1,
        "the refusals made no node of any kind (only other was made)"
    );
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

#[test]
fn handlers_are_called_the_netbsd_way() {
    let ctx = setup("sysctl-convention");
    let mut v: i32 = 4;
    let mut log: *mut sysctllog = ptr::null_mut();
    let (r, leaf) = {
        let _e = Entered::new(&ctx);
        let r = device_node(&mut log);
        let p = (&mut v as *mut i32).cast();
        let (e, leaf) = leaf_node(&mut log, r, RW, INT, c"strict", Some(even_only), 0, p, 4);
        assert_eq!(e, 0);
        (r, leaf)
    };
    // SAFETY: both nodes are live.
    let mib = unsafe { [HW, (*r).sysctl_num, (*leaf).sysctl_num] };

    assert_eq!(values(&ctx)["strict"], ("4".into(), true));
    let (namelen, buflen, oname, past) = seen(leaf);
    assert_eq!((namelen, oname, past), (0, mib, true));
    assert!(buflen >= 4, "a read gives the buffer's length: {buflen}");

    set(&ctx, "strict", "8").expect("a set through a handler");
    assert_eq!(v, 8);
    let (namelen, buflen, oname, past) = seen(leaf);
    assert_eq!((namelen, buflen, oname, past), (0, 0, mib, true));
    // SAFETY: log came from sysctl_createv.
    unsafe { sysctl::sysctl_teardown(&mut log) };
}

#[test]
fn lookup_truncates_a_short_read_and_refuses_names_below_a_leaf() {
    let mut v: i32 = 0x0102_0304;
    let node = sysctlnode {
        sysctl_flags: sys::CTLTYPE_INT | sys::CTLFLAG_READWRITE,
        sysctl_size: 4,
        sysctl_data: (&mut v as *mut i32).cast(),
        ..Default::default()
    };
    let mut out = [0u8; 4];
    let mut len = 2usize;
    let names = [1];
    let lookup = |name: *const c_int,
                  namelen,
                  out: *mut c_void,
                  len: *mut usize,
                  new: *const c_void,
                  newlen| {
        // SAFETY: the buffers are live and as long as said.
        unsafe {
            sysctl::sysctl_lookup(
                name,
                namelen,
                out,
                len,
                new,
                newlen,
                names.as_ptr(),
                ptr::null_mut(),
                &node,
            )
        }
    };
    // Too short a buffer: what fits is copied, the length says the size.
    assert_eq!(
        lookup(
            ptr::null(),
            0,
            out.as_mut_ptr().cast(),
            &mut len,
            ptr::null(),
            0
        ),
        0
    );
    assert_eq!(len, 4);
    assert_eq!(out[..2], 0x0102_0304i32.to_ne_bytes()[..2]);
    assert_eq!(out[2..], [0, 0], "nothing past the buffer's length");
    // Names below a leaf.
    assert_eq!(
        lookup(
            names.as_ptr(),
            1,
            out.as_mut_ptr().cast(),
            &mut len,
            ptr::null(),
            0
        ),
        libc::EINVAL
    );
    // A new value of length 0 is no new value.
    let new = 9i32;
    let newp = (&new as *const i32).cast();
    assert_eq!(
        lookup(ptr::null(), 0, ptr::null_mut(), &mut len, newp, 0),
        0
    );
    assert_eq!(v, 0x0102_0304);
    assert_eq!(
        lookup(ptr::null(), 0, ptr::null_mut(), &mut len, newp, 4),
        0
    );
    assert_eq!(v, 9);
}

#[test]
fn a_handler_answering_no_bytes_reads_as_an_empty_value() {
    let ctx = setup("sysctl-empty");
    let mut log: *mut sysctllog = ptr::null_mut();
    // A string buffer whose first bytes are no NUL: an unbounded read
    // would run past it.
    let mut junk = [b'x'; 8];
    {
        let _e = Entered::new(&ctx);
        let r = device_node(&mut log);
        let p = junk.as_mut_ptr().cast();
        for (ty, name) in [(STRING, c"s"), (INT, c"i"), (QUAD, c"q")] {
            let e = leaf_node(&mut log, r, 0, ty, name, Some(even_only), NO_BYTES, p, 0).0;
            assert_eq!(e, 0, "{name:?}");
        }
    }
    let v = values(&ctx);
    for name in ["s", "i", "q"] {
        assert_eq!(v[name], (String::new(), false), "{name}");
    }
    // SAFETY: log came from sysctl_createv.
    unsafe { sysctl::sysctl_teardown(&mut log) };
}

#[test]
fn createv_follows_netbsd() {
    let ctx = setup("sysctl-netbsd");
    let mut knob: i32 = 3;
    let int = (&mut knob as *mut i32).cast();
    let mut log: *mut sysctllog = ptr::null_mut();
    let _e = Entered::new(&ctx);
    let r = device_node(&mut log);
    let count = |ctx: &DevCtx| ctx.sysctl.lock().unwrap().len();

    // mkdir -p: the device node again, by CTL_CREATE or by its number,
    // is the same node, and nothing new is made.
    let n = count(&ctx);
    assert_eq!(hw_node(&mut log, c"dev0"), r);
    let (e, again) = top_node(&mut log, c"dev0", HW);
    assert_eq!((e, again), (0, r));
    // A leaf too, when name, handler and number (or CTL_CREATE) agree.
    let (e, k) = leaf_node(&mut log, r, RW, INT, c"knob", None, 0, int, 4);
    assert_eq!(e, 0);
    let (e, k2) = leaf_node(&mut log, r, RW, INT, c"knob", None, 0, int, 4);
    assert_eq!((e, k2), (0, k));
    assert_eq!(count(&ctx), n + 1, "only the first knob was made");
    // A clash of number under another name stays EEXIST, *cnode cleared.
    // SAFETY: k is live.
    let num = unsafe { (*k).sysctl_num };
    let mut cnode: *const sysctlnode = r;
    // SAFETY: the pointers are live; the names end with CTL_EOL.
    let e = unsafe {
        sysctl_createv(
            &mut log,
            0,
            &r,
            &mut cnode,
            RW,
            INT,
            c"other".as_ptr(),
            ptr::null(),
            None,
            0,
            int,
            4,
            num,
            EOL,
        )
    };
    assert_eq!((e, cnode), (libc::EEXIST, ptr::null()));

    // rnode given but *rnode NULL: EINVAL, not a top-level node.
    let nothing: *const sysctlnode = ptr::null();
    // SAFETY: as above.
    let e = unsafe {
        sysctl_createv(
            &mut log,
            0,
            &nothing,
            ptr::null_mut(),
            0,
            NODE,
            c"top".as_ptr(),
            ptr::null(),
            None,
            0,
            ptr::null_mut(),
            0,
            HW,
            CREATE,
            EOL,
        )
    };
    assert_eq!(e, libc::EINVAL);
    // cflags must be 0.
    // SAFETY: as above.
    let e = unsafe {
        sysctl_createv(
            &mut log,
            1,
            &r,
            ptr::null_mut(),
            RW,
            INT,
            c"cf".as_ptr(),
            ptr::null(),
            None,
            0,
            int,
            4,
            CREATE,
            EOL,
        )
    };
    assert_eq!(e, libc::EINVAL);
    assert_eq!(count(&ctx), n + 1, "the refusals made nothing");

    // CTL_CREATE ends the list: what follows it is never read (a 99 read
    // as a name would be an error).
    let mut made: *const sysctlnode = ptr::null();
    // SAFETY: as above; the names after CTL_CREATE are not read.
    let e = unsafe {
        sysctl_createv(
            &mut log,
            0,
            &r,
            &mut made,
            RW,
            INT,
            c"rx-delay".as_ptr(),
            ptr::null(),
            None,
            0,
            int,
            4,
            CREATE,
            99,
        )
    };
    assert_eq!(e, 0, "'-' is a name character, CTL_CREATE the last name");
    assert!(!made.is_null());

    // NetBSD's flag values; PERMANENT, PRIVATE, HEX are accepted, any
    // READWRITE bit makes a node writable, IMMEDIATE keeps the value in
    // the node.
    assert_eq!(
        [
            sys::CTLFLAG_READWRITE,
            sys::CTLFLAG_ANYWRITE,
            sys::CTLFLAG_PRIVATE,
            sys::CTLFLAG_PERMANENT,
            sys::CTLFLAG_IMMEDIATE,
            sys::CTLFLAG_HEX,
        ],
        [0x70, 0x80, 0x100, 0x200, 0x800, 0x1000]
    );
    let flags = (sys::CTLFLAG_PERMANENT | sys::CTLFLAG_PRIVATE | sys::CTLFLAG_HEX) as c_int;
    let e = leaf_node(&mut log, r, RW | flags, INT, c"perm", None, 0, int, 4).0;
    assert_eq!(e, 0);
    let imm = sys::CTLFLAG_IMMEDIATE as c_int;
    let e = leaf_node(&mut log, r, imm, QUAD, c"imm", None, 7, int, 0).0;
    assert_eq!(e, 0);
    let e = leaf_node(&mut log, r, imm, STRING, c"imms", None, 7, int, 0).0;
    assert_eq!(e, libc::EINVAL, "an immediate string");
    let v = values(&ctx);
    assert_eq!(v["perm"], ("3".into(), true));
    assert_eq!(v["imm"], ("7".into(), false), "the node's value, not knob");
    assert_eq!(v["rx-delay"], ("3".into(), true));
    // SAFETY: log came from sysctl_createv.
    unsafe { sysctl::sysctl_teardown(&mut log) };
}

#[test]
fn nodes_left_at_detach_are_counted_and_removed() {
    let ctx = setup("sysctl-left");
    let mut log: *mut sysctllog = ptr::null_mut();
    {
        let _e = Entered::new(&ctx);
        let r = device_node(&mut log);
        let e = leaf_node(&mut log, r, 0, QUAD, c"n", None, 1, ptr::null_mut(), 0).0;
        assert_eq!(e, 0);
    }
    let before = sysctl::left_at_detach();
    // The driver "forgot" sysctl_teardown: hw.dev0 and its leaf are left.
    sysctl::forget_all(&ctx, "dev0");
    assert!(sysctl::left_at_detach() >= before + 2);
    assert!(ctx.sysctl.lock().unwrap().is_empty());
    // A driver that tore down leaves nothing to count (hw itself aside).
    {
        let _e = Entered::new(&ctx);
        let mut log2: *mut sysctllog = ptr::null_mut();
        device_node(&mut log2);
        // SAFETY: log2 came from sysctl_createv.
        unsafe { sysctl::sysctl_teardown(&mut log2) };
    }
    assert_eq!(ctx.sysctl.lock().unwrap().len(), 1, "hw");
    // The first log's nodes are gone; free the log itself.
    // SAFETY: log came from sysctl_createv; its nodes are gone already.
    unsafe { sysctl::sysctl_teardown(&mut log) };
}
