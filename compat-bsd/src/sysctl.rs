//! sysctl(9) (`<sys/sysctl.h>`), the part drivers use: nodes made with
//! `sysctl_createv` (its variable argument list is read in
//! csrc/kern_sysctl.c), removed with `sysctl_teardown`, and handler
//! functions that call `sysctl_lookup`.
//!
//! Each device keeps its own [`Tree`] in its context: there is no
//! process-wide MIB, so two devices of one driver can both make
//! `hw.<xname>` and the nodes go when the device does. The adapter reads
//! and writes the leaves for the stack ([`leaves`], [`read`], [`write`]),
//! which shows them as `net.if.IF.drv.<path below the device node>`.
//!
//! Every argument is checked before a node is made, in NetBSD's order and
//! with its errno: a name too long (ENAMETOOLONG), a path through a leaf
//! or to nowhere (ENOTDIR, ENOENT), a bad name or type (EINVAL), a clash
//! (EEXIST, unless it is the same node: then that node, NetBSD's "mkdir
//! -p"); then, beyond NetBSD, a writable string or a variable of the wrong
//! size (EINVAL). Each refusal is logged and makes nothing.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::ctx::{self, lock, DevCtx};
use crate::sys;

/// Numbers given to nodes made with `CTL_CREATE` start here (NetBSD's
/// dynamic numbers start above the static ones too).
const FIRST_DYNAMIC: i32 = 1024;

/// The longest string value read from a node that gave no buffer size.
const MAX_STRING: usize = 4096;

/// The top-level nodes a driver may hang its nodes under.
const ROOTS: &[(i32, &str)] = &[
    (sys::CTL_KERN as i32, "kern"),
    (sys::CTL_NET as i32, "net"),
    (sys::CTL_HW as i32, "hw"),
];

/// One node: the C structure drivers see, its description, and the log
/// that made it (0: a top-level node made implicitly, or no log).
struct Entry {
    node: sys::sysctlnode,
    name: String,
    _desc: Option<CString>,
    log: u64,
}

/// The nodes of one device.
#[derive(Default)]
pub struct Tree {
    // Boxed: C holds pointers to the nodes, which must not move when the
    // vector grows.
    #[allow(clippy::vec_box)]
    entries: Vec<Box<Entry>>,
    next_num: i32,
    next_log: u64,
}

// SAFETY: the raw pointers in the nodes lead to the driver's softc and to
// other entries of this tree; the tree is behind its context's mutex and
// the values behind them are touched under the driver's lock.
unsafe impl Send for Tree {}

/// What `sysctl_createv` hands the driver as its `struct sysctllog *`:
/// which device and which log of its tree.
struct Log {
    ctx: *const DevCtx,
    id: u64,
}

/// Why a node was not made: an errno and the message logged.
struct Refusal(c_int, String);

fn type_of(flags: u32) -> u32 {
    flags & sys::CTLTYPE_MASK
}

fn is_node(n: &sys::sysctlnode) -> bool {
    type_of(n.sysctl_flags) == sys::CTLTYPE_NODE
}

/// Whether a node's value may be changed.
pub fn writable(n: &sys::sysctlnode) -> bool {
    n.sysctl_flags & sys::CTLFLAG_READWRITE != 0
}

/// A valid node name, NetBSD's rule: letters, digits, '-' and '_', not
/// starting with a digit, not empty (the caller has checked it is shorter
/// than `SYSCTL_NAMELEN`). No '.', so it is one component of a dotted
/// name.
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// The size of a leaf's value, by type (strings: their buffer).
fn value_size(ty: u32) -> Option<usize> {
    match ty {
        sys::CTLTYPE_INT => Some(4),
        sys::CTLTYPE_BOOL => Some(1),
        sys::CTLTYPE_QUAD => Some(8),
        _ => None,
    }
}

impl Tree {
    fn find(&self, node: *const sys::sysctlnode) -> Option<&Entry> {
        self.entries
            .iter()
            .map(|e| &**e)
            .find(|e| ptr::eq(&e.node, node))
    }

    /// The child of `parent` (null: the top) numbered `num`.
    fn child(&self, parent: *const sys::sysctlnode, num: i32) -> Option<&Entry> {
        self.entries
            .iter()
            .map(|e| &**e)
            .find(|e| ptr::eq(e.node.sysctl_parent, parent) && e.node.sysctl_num == num)
    }

    fn push(&mut self, e: Entry) -> *const sys::sysctlnode {
        let mut b = Box::new(e);
        if b.node.sysctl_data.is_null() && !is_node(&b.node) && b.node.sysctl_func.is_none() {
            // A leaf with no variable keeps its value in the node.
            b.node.sysctl_data = ptr::addr_of_mut!(b.node.sysctl_qdata).cast();
        }
        let p: *const sys::sysctlnode = &b.node;
        self.entries.push(b);
        p
    }

    /// The top-level node `num`, made on first use.
    fn root(&mut self, num: i32) -> Option<*const sys::sysctlnode> {
        if let Some(e) = self.child(ptr::null(), num) {
            return Some(&e.node);
        }
        let &(_, name) = ROOTS.iter().find(|(n, _)| *n == num)?;
        Some(self.push(Entry {
            node: make_node(num, name, sys::CTLTYPE_NODE, ptr::null()),
            name: name.to_owned(),
            _desc: None,
            log: 0,
        }))
    }

    /// Makes a node (see `sysctl_createv`); returns it, or the node that
    /// is already there when it is the same one (NetBSD's "mkdir -p").
    /// The checks come in NetBSD's order: the name's length, the path to
    /// the parent, the last name, the name's characters, a clash, then
    /// the type and the variable.
    fn create(&mut self, req: &Create<'_>) -> Result<*const sys::sysctlnode, Refusal> {
        let name = req.name;
        let refuse = |e: c_int, why: String| Refusal(e, format!("sysctl_createv {name}: {why}"));
        let ty = req.ty;
        if name.len() >= sys::SYSCTL_NAMELEN as usize {
            return Err(refuse(
                libc::ENAMETOOLONG,
                format!("a name of {} characters or more", sys::SYSCTL_NAMELEN),
            ));
        }
        let Some((&last, path)) = req.names.split_last() else {
            return Err(refuse(libc::EINVAL, "no names before CTL_EOL".into()));
        };
        let parent = self
            .parent(req.base, path)
            .map_err(|(e, why)| refuse(e, why))?;
        if last < 0 && last != sys::CTL_CREATE {
            return Err(refuse(libc::EINVAL, format!("bad last name {last}")));
        }
        if !valid_name(name) {
            return Err(refuse(
                libc::EINVAL,
                "not a node name ([A-Za-z0-9_-], not starting with a digit)".into(),
            ));
        }
        if let Some(n) = self.clash(parent, last, name) {
            // SAFETY: n is a node of this tree.
            let node = unsafe { &*n };
            let same = node.sysctl_func.map(|f| f as usize) == req.func.map(|f| f as usize)
                && (node.sysctl_num == last || last == sys::CTL_CREATE);
            if same && self.find(n).is_some_and(|e| e.name == name) {
                return Ok(n);
            }
            return Err(refuse(
                libc::EEXIST,
                format!("the parent has a node named {name} or numbered {last}"),
            ));
        }
        if ![
            sys::CTLTYPE_NODE,
            sys::CTLTYPE_INT,
            sys::CTLTYPE_BOOL,
            sys::CTLTYPE_QUAD,
            sys::CTLTYPE_STRING,
        ]
        .contains(&ty)
        {
            return Err(refuse(libc::EINVAL, format!("unknown type {ty}")));
        }
        let immediate = req.flags & sys::CTLFLAG_IMMEDIATE != 0;
        if immediate && value_size(ty).is_none() {
            return Err(refuse(
                libc::EINVAL,
                "CTLFLAG_IMMEDIATE on a type that is no number".into(),
            ));
        }
        let num = if last == sys::CTL_CREATE {
            if self.next_num < FIRST_DYNAMIC {
                self.next_num = FIRST_DYNAMIC;
            }
            self.next_num += 1;
            self.next_num - 1
        } else {
            last
        };
        let rw = req.flags & sys::CTLFLAG_READWRITE != 0;
        match ty {
            sys::CTLTYPE_STRING if rw => {
                return Err(refuse(
                    libc::EINVAL,
                    "writable strings are not supported".into(),
                ))
            }
            sys::CTLTYPE_STRING if req.data.is_null() && req.func.is_none() => {
                return Err(refuse(libc::EINVAL, "a string needs a variable".into()))
            }
            _ => {}
        }
        if let Some(want) = value_size(ty) {
            if !req.data.is_null() && req.size != 0 && req.size != want {
                return Err(refuse(
                    libc::EINVAL,
                    format!("variable of {} bytes for a {want}-byte type", req.size),
                ));
            }
        }
        let desc = req.desc.and_then(|d| CString::new(d).ok());
        let mut node = make_node(
            num,
            name,
            ty,
            desc.as_ref().map_or(ptr::null(), |d| d.as_ptr()),
        );
        node.sysctl_flags |= req.flags & sys::SYSCTL_FLAGMASK;
        node.sysctl_parent = parent.cast_mut();
        node.sysctl_func = req.func;
        // An immediate value lives in the node (push points data at it).
        node.sysctl_data = if immediate { ptr::null_mut() } else { req.data };
        node.sysctl_size = value_size(ty).unwrap_or(req.size);
        node.sysctl_qdata = req.qv as i64;
        Ok(self.push(Entry {
            node,
            name: name.to_owned(),
            _desc: desc,
            log: req.log,
        }))
    }

    /// The parent a new node goes under: `base` (null: the top) and then
    /// the numbers of `path` below it, each a node.
    fn parent(
        &mut self,
        base: *const sys::sysctlnode,
        path: &[c_int],
    ) -> Result<*const sys::sysctlnode, (c_int, String)> {
        let mut parent: *const sys::sysctlnode = ptr::null();
        if !base.is_null() {
            match self.find(base) {
                Some(e) => parent = &e.node,
                None => {
                    return Err((
                        libc::ENOENT,
                        "the parent node is not one of this device's".into(),
                    ))
                }
            }
        }
        // SAFETY: a non-null parent is a node of this tree.
        if !parent.is_null() && !is_node(unsafe { &*parent }) {
            return Err((libc::ENOTDIR, "the parent is a leaf, not a node".into()));
        }
        for &num in path {
            let next = if parent.is_null() {
                self.root(num)
            } else {
                self.child(parent, num).map(|e| &e.node as *const _)
            };
            let Some(next) = next else {
                return Err((libc::ENOENT, format!("no node {num} on the path")));
            };
            // SAFETY: next is a node of this tree.
            if !is_node(unsafe { &*next }) {
                return Err((
                    libc::ENOTDIR,
                    format!("node {num} on the path is a leaf, not a node"),
                ));
            }
            parent = next;
        }
        Ok(parent)
    }

    /// The child of `parent` (null: the top, whose nodes are made on
    /// first use) numbered `num` or named `name`, if there is one.
    fn clash(
        &mut self,
        parent: *const sys::sysctlnode,
        num: c_int,
        name: &str,
    ) -> Option<*const sys::sysctlnode> {
        if parent.is_null() {
            if let Some(&(n, _)) = ROOTS.iter().find(|&&(n, r)| n == num || r == name) {
                return self.root(n);
            }
        }
        self.entries
            .iter()
            .find(|e| {
                ptr::eq(e.node.sysctl_parent, parent)
                    && (e.node.sysctl_num == num || e.name == name)
            })
            .map(|e| &e.node as *const _)
    }

    /// Removes the nodes made through log `id`, and anything made below
    /// them; returns how many went.
    fn teardown(&mut self, id: u64) -> usize {
        let before = self.entries.len();
        let mut gone: Vec<*const sys::sysctlnode> = self
            .entries
            .iter()
            .filter(|e| e.log == id)
            .map(|e| &e.node as *const _)
            .collect();
        // Descendants, so no node is left with a dangling parent.
        loop {
            let more: Vec<_> = self
                .entries
                .iter()
                .filter(|e| {
                    !gone.contains(&(&e.node as *const _))
                        && gone.contains(&e.node.sysctl_parent.cast_const())
                })
                .map(|e| &e.node as *const _)
                .collect();
            if more.is_empty() {
                break;
            }
            gone.extend(more);
        }
        self.entries
            .retain(|e| !gone.contains(&(&e.node as *const _)));
        before - self.entries.len()
    }

    /// Forgets every node (the device is gone).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The nodes a driver made and did not remove: all but the top-level
    /// nodes made implicitly.
    fn made(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| {
                !(e.log == 0
                    && e.node.sysctl_parent.is_null()
                    && ROOTS.iter().any(|&(n, _)| n == e.node.sysctl_num))
            })
            .count()
    }

    /// How many nodes the tree has (the implicit top-level ones too).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the tree has no node at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The MIB of a node: its number and its parents', from the top.
    fn mib(&self, node: *const sys::sysctlnode) -> Vec<c_int> {
        let mut mib = Vec::new();
        let mut n = node;
        while let Some(e) = self.find(n) {
            mib.push(e.node.sysctl_num);
            n = e.node.sysctl_parent;
        }
        mib.reverse();
        mib
    }

    /// The dotted path of a node from the top (`hw.bnull0.size`).
    fn path(&self, node: *const sys::sysctlnode) -> String {
        let mut parts = Vec::new();
        let mut n = node;
        while let Some(e) = self.find(n) {
            parts.push(e.name.as_str());
            n = e.node.sysctl_parent;
        }
        parts.reverse();
        parts.join(".")
    }
}

fn make_node(num: i32, name: &str, ty: u32, desc: *const c_char) -> sys::sysctlnode {
    let mut n = sys::sysctlnode {
        sysctl_flags: ty,
        sysctl_num: num,
        sysctl_desc: desc,
        ..Default::default()
    };
    for (d, s) in n.sysctl_name.iter_mut().zip(name.bytes()) {
        *d = s as c_char;
    }
    n
}

/// The arguments of one `sysctl_createv`, checked by [`Tree::create`].
struct Create<'a> {
    base: *const sys::sysctlnode,
    flags: u32,
    ty: u32,
    name: &'a str,
    desc: Option<&'a str>,
    func: sys::sysctlfn,
    qv: u64,
    data: *mut c_void,
    size: usize,
    names: &'a [c_int],
    log: u64,
}

/// # Safety
/// `p` must be null or a NUL-terminated string.
unsafe fn text<'a>(p: *const c_char) -> Option<&'a str> {
    // SAFETY: forwarded contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("\u{fffd}"))
}

/// `sysctl_createv(9)` once csrc/kern_sysctl.c has read its names.
///
/// # Safety
/// The pointers must be null or valid as `sysctl_createv(9)` describes
/// them; `names` must hold `namelen` ints.
#[no_mangle]
pub unsafe extern "C" fn pktkit_sysctl_create(
    logp: *mut *mut sys::sysctllog,
    rnode: *mut *const sys::sysctlnode,
    cnode: *mut *const sys::sysctlnode,
    flags: c_int,
    ty: c_int,
    name: *const c_char,
    descr: *const c_char,
    func: sys::sysctlfn,
    qv: u64,
    data: *mut c_void,
    size: usize,
    names: *const c_int,
    namelen: c_uint,
) -> c_int {
    // SAFETY: forwarded contract.
    let name_s = unsafe { text(name) }.unwrap_or("");
    let Some(ctx) = ctx::current() else {
        log::error!(target: "bsd", "sysctl_createv {name_s}: outside a driver entry");
        return libc::ENXIO;
    };
    let names: &[c_int] = if names.is_null() || namelen == 0 {
        &[]
    } else {
        // SAFETY: forwarded contract.
        unsafe { std::slice::from_raw_parts(names, namelen as usize) }
    };
    let base = if rnode.is_null() {
        ptr::null()
    } else {
        // SAFETY: forwarded contract.
        unsafe { *rnode }
    };
    let existing = if logp.is_null() {
        None
    } else {
        // SAFETY: forwarded contract: *logp is null or a Log we made.
        unsafe { (*logp).cast::<Log>().as_ref() }
    };
    let mut tree = lock(&ctx.sysctl);
    let log_id = match existing {
        Some(l) => l.id,
        None if logp.is_null() => 0,
        None => {
            tree.next_log += 1;
            tree.next_log
        }
    };
    let req = Create {
        base,
        flags: flags as u32,
        ty: ty as u32,
        name: name_s,
        // SAFETY: forwarded contract.
        desc: unsafe { text(descr) },
        func,
        qv,
        data,
        size,
        names,
        log: log_id,
    };
    match tree.create(&req) {
        Ok(n) => {
            if existing.is_none() && !logp.is_null() {
                let l = Box::new(Log {
                    ctx: ctx as *const DevCtx,
                    id: log_id,
                });
                // SAFETY: forwarded contract.
                unsafe { *logp = Box::into_raw(l).cast() };
            }
            if !cnode.is_null() {
                // SAFETY: forwarded contract.
                unsafe { *cnode = n };
            }
            0
        }
        Err(Refusal(e, why)) => {
            log::error!(target: "bsd", "{why}");
            e
        }
    }
}

/// Nodes drivers left at detach (made and not torn down), in this
/// process; see [`forget_all`].
static LEFT_AT_DETACH: AtomicU64 = AtomicU64::new(0);

/// How many nodes drivers' detach routines left behind so far.
pub fn left_at_detach() -> u64 {
    LEFT_AT_DETACH.load(Ordering::Relaxed)
}

/// Once the driver's detach has run: forgets `ctx`'s tree. Nodes the
/// driver made and did not remove with `sysctl_teardown` (a bug: in
/// NetBSD they would outlive its softc) are logged and counted
/// ([`left_at_detach`]).
pub fn forget_all(ctx: &DevCtx, who: &str) {
    let mut tree = lock(&ctx.sysctl);
    let left = tree.made();
    if left > 0 {
        LEFT_AT_DETACH.fetch_add(left as u64, Ordering::Relaxed);
        log::error!(
            target: "bsd",
            "{who}: detach left {left} sysctl node(s) (no sysctl_teardown?); removed"
        );
    }
    tree.clear();
}

/// `sysctl_teardown(9)`: removes the nodes made through `*logp` (and
/// anything made below them), frees the log and clears `*logp`.
///
/// # Safety
/// `logp` must be null or point to a log pointer `sysctl_createv` set (or
/// null).
#[no_mangle]
pub unsafe extern "C" fn sysctl_teardown(logp: *mut *mut sys::sysctllog) {
    if logp.is_null() {
        return;
    }
    // SAFETY: forwarded contract.
    let l = unsafe { *logp }.cast::<Log>();
    if l.is_null() {
        return;
    }
    // SAFETY: made by Box::into_raw in pktkit_sysctl_create; freed once,
    // here, as *logp is cleared.
    let l = unsafe { Box::from_raw(l) };
    // SAFETY: forwarded contract.
    unsafe { *logp = ptr::null_mut() };
    // SAFETY: the context outlives the driver's detach, the only caller.
    if let Some(ctx) = unsafe { l.ctx.as_ref() } {
        let n = lock(&ctx.sysctl).teardown(l.id);
        log::debug!(target: "bsd", "sysctl_teardown: {n} node(s) removed");
    }
}

/// A value of type `ty` held in the `size` bytes at `data`, as text;
/// no more than `size` bytes are read (fewer than the type's size: an
/// empty value).
///
/// # Safety
/// `data` must point to `size` readable bytes.
unsafe fn format_value(ty: u32, data: *const c_void, size: usize) -> String {
    if value_size(ty).is_some_and(|want| size < want) {
        return String::new();
    }
    // SAFETY: forwarded contract; unaligned reads because a handler's
    // buffer or a packed softc need not be aligned.
    unsafe {
        match ty {
            sys::CTLTYPE_INT => ptr::read_unaligned(data.cast::<i32>()).to_string(),
            sys::CTLTYPE_BOOL => u8::from(ptr::read_unaligned(data.cast::<u8>()) != 0).to_string(),
            sys::CTLTYPE_QUAD => ptr::read_unaligned(data.cast::<u64>()).to_string(),
            _ => {
                let bytes = std::slice::from_raw_parts(data.cast::<u8>(), size);
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                String::from_utf8_lossy(&bytes[..end]).into_owned()
            }
        }
    }
}

/// `sysctl_lookup(9)`: copies the node's value out to `oldp` (when given:
/// at most `*oldlenp` bytes; `*oldlenp` becomes the value's full size, so
/// a short buffer gets a truncated value, as in NetBSD, where the system
/// call and not `sysctl_lookup` answers ENOMEM) and a new value in from
/// `newp` (when given with `newlen` > 0). EINVAL when `namelen` is not 0
/// (a leaf has no names below it), EPERM for a new value on a read-only
/// node, EINVAL for one of the wrong size or a bool that is not 0 or 1.
///
/// # Safety
/// The NetBSD calling convention: `rnode` a node (or a copy of one) whose
/// `sysctl_data` points to its value; `oldp`/`oldlenp` and `newp`/`newlen`
/// valid buffers or null.
#[no_mangle]
pub unsafe extern "C" fn sysctl_lookup(
    _name: *const c_int,
    namelen: c_uint,
    oldp: *mut c_void,
    oldlenp: *mut usize,
    newp: *const c_void,
    newlen: usize,
    _oname: *const c_int,
    _l: *mut sys::lwp,
    rnode: *const sys::sysctlnode,
) -> c_int {
    // SAFETY: forwarded contract.
    let Some(node) = (unsafe { rnode.as_ref() }) else {
        return libc::EINVAL;
    };
    if namelen != 0 {
        return libc::EINVAL;
    }
    let ty = type_of(node.sysctl_flags);
    let data = node.sysctl_data;
    if data.is_null() || ty == sys::CTLTYPE_NODE {
        return libc::EOPNOTSUPP;
    }
    let size = match value_size(ty) {
        Some(s) => s,
        None => {
            // A string: up to and with its NUL, within its buffer if known.
            let cap = if node.sysctl_size == 0 {
                MAX_STRING
            } else {
                node.sysctl_size
            };
            // SAFETY: data is the node's string.
            let len = unsafe { libc::strnlen(data.cast(), cap) };
            (len + 1).min(cap)
        }
    };
    // NetBSD dereferences oldlenp unconditionally; null is tolerated
    // here (no read) so a careless caller cannot crash the process.
    if !oldlenp.is_null() {
        if !oldp.is_null() {
            // SAFETY: forwarded contract: oldp holds *oldlenp bytes.
            let n = size.min(unsafe { *oldlenp });
            // SAFETY: both buffers hold at least `n` bytes.
            unsafe { ptr::copy_nonoverlapping(data.cast::<u8>(), oldp.cast::<u8>(), n) };
        }
        // SAFETY: forwarded contract.
        unsafe { *oldlenp = size };
    }
    if newp.is_null() || newlen == 0 {
        return 0;
    }
    if !writable(node) || ty == sys::CTLTYPE_STRING {
        return libc::EPERM;
    }
    if newlen != size {
        return libc::EINVAL;
    }
    // SAFETY: newp holds newlen == size bytes.
    if ty == sys::CTLTYPE_BOOL && unsafe { *newp.cast::<u8>() } > 1 {
        return libc::EINVAL;
    }
    // SAFETY: data holds `size` bytes of the node's type.
    unsafe { ptr::copy_nonoverlapping(newp.cast::<u8>(), data.cast::<u8>(), size) };
    0
}

/// One leaf of a device's tree, as the stack shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// The path below the device node (`hw.<xname>`), dotted; the full
    /// path from the top for a leaf elsewhere.
    pub path: String,
    /// The node, for [`read`] and [`write`].
    node: usize,
    /// Whether it may be set.
    pub writable: bool,
    /// Its description.
    pub description: String,
}

/// Every leaf of `ctx`'s tree, in the order made; paths below
/// `hw.<xname>` are given relative to it.
pub fn leaves(ctx: &DevCtx, xname: &str) -> Vec<Leaf> {
    let tree = lock(&ctx.sysctl);
    let prefix = format!("hw.{xname}.");
    tree.entries
        .iter()
        .filter(|e| !is_node(&e.node))
        .map(|e| {
            let full = tree.path(&e.node);
            Leaf {
                path: full.strip_prefix(&prefix).unwrap_or(&full).to_owned(),
                node: &e.node as *const sys::sysctlnode as usize,
                writable: writable(&e.node),
                // SAFETY: the description is the entry's own CString.
                description: unsafe { text(e.node.sysctl_desc) }
                    .unwrap_or_default()
                    .to_owned(),
            }
        })
        .collect()
}

/// The leaf of `ctx`'s tree at `path` (as [`leaves`] gives it), if any.
pub fn leaf(ctx: &DevCtx, xname: &str, path: &str) -> Option<Leaf> {
    leaves(ctx, xname).into_iter().find(|l| l.path == path)
}

/// A copy of `leaf`'s node and its MIB (the numbers from the top down to
/// it), if it is still one of `ctx`'s tree.
fn live(ctx: &DevCtx, leaf: &Leaf) -> Option<(sys::sysctlnode, Vec<c_int>)> {
    let tree = lock(&ctx.sysctl);
    let node = tree.find(leaf.node as *const sys::sysctlnode)?.node;
    Some((node, tree.mib(leaf.node as *const sys::sysctlnode)))
}

/// Calls a node's handler as NetBSD's dispatch calls a leaf's: `name`
/// past the end of the full MIB with `namelen` 0, `oname` the full MIB,
/// a valid `oldlenp` (`*oldlen`; 0 when not reading), no lwp. A leaf
/// without a handler is served by [`sysctl_lookup`], as in NetBSD.
///
/// # Safety
/// `node` must be a live node of a device entered by the caller, under the
/// driver's lock, and `mib` its MIB; the buffers as for [`sysctl_lookup`].
unsafe fn call(
    f: sys::sysctlfn,
    node: *const sys::sysctlnode,
    mib: &[c_int],
    oldp: *mut c_void,
    oldlen: &mut usize,
    newp: *const c_void,
    newlen: usize,
) -> c_int {
    let f = f.unwrap_or(sysctl_lookup);
    let names = mib.as_ptr_range();
    // SAFETY: forwarded contract; `names.end` is one past the MIB, never
    // read since namelen is 0.
    unsafe {
        f(
            names.end,
            0,
            oldp,
            oldlen,
            newp,
            newlen,
            names.start,
            ptr::null_mut(),
            node,
        )
    }
}

/// A leaf's value as text, read as `sysctl(8)` would read it: through its
/// handler, or [`sysctl_lookup`] for a leaf without one, into a buffer of
/// `MAX_STRING` bytes (a larger value is an error, an empty one an empty
/// string). The caller has entered the device and holds the driver's
/// lock.
pub fn read(ctx: &DevCtx, leaf: &Leaf) -> Result<String, String> {
    let Some((node, mib)) = live(ctx, leaf) else {
        return Err("the node is gone".into());
    };
    let ty = type_of(node.sysctl_flags);
    let mut buf = vec![0u8; MAX_STRING];
    let mut len = buf.len();
    // SAFETY: the caller's contract; buf is `len` writable bytes.
    let e = unsafe {
        call(
            node.sysctl_func,
            leaf.node as *const sys::sysctlnode,
            &mib,
            buf.as_mut_ptr().cast(),
            &mut len,
            ptr::null(),
            0,
        )
    };
    if e != 0 {
        return Err(format!("the driver's handler failed: {}", errno_name(e)));
    }
    if len > buf.len() {
        return Err(format!(
            "the value is {len} bytes, over the {MAX_STRING} read"
        ));
    }
    // SAFETY: the handler (or sysctl_lookup) wrote `len` bytes (at most
    // buf's) of the node's type; format_value reads no more than that.
    Ok(unsafe { format_value(ty, buf.as_ptr().cast(), len) })
}

/// Sets a writable leaf from text: an integer for `CTLTYPE_INT` and
/// `CTLTYPE_QUAD`, 0 or 1 for `CTLTYPE_BOOL`. A handler gets the new
/// value the NetBSD way and may refuse it (its errno is reported); a
/// bound variable is written directly. Nothing changes on an error. The
/// caller has entered the device and holds the driver's lock.
pub fn write(ctx: &DevCtx, leaf: &Leaf, value: &str) -> Result<(), String> {
    let Some((node, mib)) = live(ctx, leaf) else {
        return Err("the node is gone".into());
    };
    if !writable(&node) {
        return Err("read-only".into());
    }
    let ty = type_of(node.sysctl_flags);
    let mut buf = [0u8; 8];
    let size = match ty {
        sys::CTLTYPE_INT => {
            let v: i32 = value
                .parse()
                .map_err(|_| "expected a 32-bit integer".to_owned())?;
            buf[..4].copy_from_slice(&v.to_ne_bytes());
            4
        }
        sys::CTLTYPE_BOOL => {
            buf[0] = match value {
                "0" => 0,
                "1" => 1,
                _ => return Err("expected 0 or 1".into()),
            };
            1
        }
        sys::CTLTYPE_QUAD => {
            let v: u64 = match value.parse::<u64>() {
                Ok(v) => v,
                Err(_) => value
                    .parse::<i64>()
                    .map_err(|_| "expected a 64-bit integer".to_owned())?
                    as u64,
            };
            buf.copy_from_slice(&v.to_ne_bytes());
            8
        }
        _ => return Err("read-only".into()),
    };
    // Not reading: no old buffer and a length of 0, but a valid pointer
    // to it, as NetBSD gives.
    let mut oldlen = 0usize;
    // SAFETY: the caller's contract (a variable is written under the
    // driver's lock); buf holds `size` bytes.
    let e = unsafe {
        call(
            node.sysctl_func,
            leaf.node as *const sys::sysctlnode,
            &mib,
            ptr::null_mut(),
            &mut oldlen,
            buf.as_ptr().cast(),
            size,
        )
    };
    if e != 0 {
        return Err(format!("the driver refused it: {}", errno_name(e)));
    }
    Ok(())
}

fn errno_name(e: c_int) -> String {
    let what = match e {
        libc::EINVAL => "EINVAL, invalid value",
        libc::EPERM => "EPERM, not permitted",
        libc::ERANGE => "ERANGE, out of range",
        libc::EBUSY => "EBUSY, busy",
        _ => "",
    };
    if what.is_empty() {
        format!("errno {e}")
    } else {
        format!("errno {e} ({what})")
    }
}
