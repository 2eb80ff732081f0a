//! Kernel services of the KPI: messages, memory, time, kmutex, softint,
//! callout, evcnt (`<sys/systm.h>`, `<sys/kmem.h>`, `<sys/malloc.h>`,
//! `<sys/mutex.h>`, `<sys/intr.h>`, `<sys/callout.h>`, `<sys/evcnt.h>`).
//!
//! None of this is on a packet path except `mutex_enter`/`mutex_exit`,
//! which are a compare-and-swap each when uncontended.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void, CStr};
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::ctx::{self, lock, now_ns, DevCtx, Entered, SoftInt};
use crate::sys;

/// `ncpu`: the CPUs this process may run on, which bounds the runtime's
/// workers and so the threads a driver's code can run on at once. Set when
/// the first device context is made; 1 until then.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static ncpu: AtomicI32 = AtomicI32::new(1);

/// Sets [`ncpu`] from the process's CPU affinity.
pub fn count_cpus() {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    ncpu.store(i32::try_from(n).unwrap_or(i32::MAX), Ordering::Relaxed);
}

/// Nanoseconds per tick (hz = 100, set in csrc/kern_subr.c).
pub const TICK_NS: u64 = 10_000_000;

fn start_ns() -> u64 {
    static START: OnceLock<u64> = OnceLock::new();
    *START.get_or_init(now_ns)
}

/// # Safety
/// `p` must be null or a NUL-terminated string.
unsafe fn cstr<'a>(p: *const c_char) -> &'a str {
    if p.is_null() {
        return "";
    }
    // SAFETY: forwarded contract.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .unwrap_or("<non-utf8>")
}

/// Logs one message from C (`printf`, `log`, `aprint_*`).
///
/// # Safety
/// `msg` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn pktkit_bsd_log(level: c_int, msg: *const c_char) {
    // SAFETY: forwarded contract.
    let s = unsafe { cstr(msg) }.trim_end();
    if s.is_empty() {
        return;
    }
    match level {
        0..=3 => log::error!(target: "bsd", "{s}"),
        4 => log::warn!(target: "bsd", "{s}"),
        5 | 6 => log::info!(target: "bsd", "{s}"),
        _ => log::debug!(target: "bsd", "{s}"),
    }
}

/// The driver called `panic()`: the process cannot trust the driver's state
/// any more, so it logs and aborts (unwinding into C is not possible).
///
/// # Safety
/// `msg` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn pktkit_bsd_panic(msg: *const c_char) -> ! {
    // SAFETY: forwarded contract.
    let s = unsafe { cstr(msg) };
    log::error!(target: "bsd", "panic: {s}");
    eprintln!("pktkit: ported driver panic: {s}");
    std::process::abort()
}

/// `malloc(size, type, flags)` of `<sys/malloc.h>`.
#[no_mangle]
pub extern "C" fn pktkit_kern_malloc(size: c_ulong, flags: c_int) -> *mut c_void {
    const M_ZERO: c_int = 0x0100;
    let size = (size as usize).max(1);
    // SAFETY: plain allocation; NULL is a valid answer the caller checks.
    unsafe {
        if flags & M_ZERO != 0 {
            libc::calloc(1, size)
        } else {
            libc::malloc(size)
        }
    }
}

/// `free(addr, type)` of `<sys/malloc.h>`.
///
/// # Safety
/// `p` must come from `pktkit_kern_malloc` (or be null).
#[no_mangle]
pub unsafe extern "C" fn pktkit_kern_free(p: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { libc::free(p) }
}

/// `kmem_alloc(9)`.
#[no_mangle]
pub extern "C" fn kmem_alloc(size: usize, _flags: c_uint) -> *mut c_void {
    // SAFETY: plain allocation.
    unsafe { libc::malloc(size.max(1)) }
}

/// `kmem_zalloc(9)`.
#[no_mangle]
pub extern "C" fn kmem_zalloc(size: usize, _flags: c_uint) -> *mut c_void {
    // SAFETY: plain allocation.
    unsafe { libc::calloc(1, size.max(1)) }
}

/// `kmem_free(9)`.
///
/// # Safety
/// `p` must come from `kmem_alloc`/`kmem_zalloc` (or be null).
#[no_mangle]
pub unsafe extern "C" fn kmem_free(p: *mut c_void, _size: usize) {
    // SAFETY: forwarded contract.
    unsafe { libc::free(p) }
}

/// `delay(9)`: busy-waits short delays, sleeps longer ones (the thread
/// is the runtime's, and the driver's lock stays held as in NetBSD).
#[no_mangle]
pub extern "C" fn delay(us: c_uint) {
    if us >= 100 {
        std::thread::sleep(Duration::from_micros(us.into()));
        return;
    }
    let until = now_ns() + u64::from(us) * 1000;
    while now_ns() < until {
        std::hint::spin_loop();
    }
}

/// `tsleep(9)`: nobody can wake a driver here, so this sleeps for the
/// timeout (at least one tick) and reports it expired.
#[no_mangle]
pub extern "C" fn tsleep(
    _chan: *const c_void,
    _pri: c_int,
    _wmesg: *const c_char,
    timo: c_int,
) -> c_int {
    let t = timo.max(1) as u64;
    std::thread::sleep(Duration::from_nanos(t * TICK_NS));
    libc::EWOULDBLOCK
}

/// `kpause(9)`.
///
/// # Safety
/// `mtx` must be null or a kmutex held by the caller.
#[no_mangle]
pub unsafe extern "C" fn kpause(
    _w: *const c_char,
    _intr: bool,
    timo: c_int,
    mtx: *mut sys::kmutex,
) -> c_int {
    if !mtx.is_null() {
        // SAFETY: the caller holds it.
        unsafe { mutex_exit(mtx) };
    }
    std::thread::sleep(Duration::from_nanos(timo.max(1) as u64 * TICK_NS));
    if !mtx.is_null() {
        // SAFETY: re-taken as the caller expects.
        unsafe { mutex_enter(mtx) };
    }
    libc::EWOULDBLOCK
}

/// `wakeup(9)`: nobody sleeps on a channel here.
#[no_mangle]
pub extern "C" fn wakeup(_chan: *const c_void) {}

/// Ticks since the stack started (`ticks`).
#[no_mangle]
pub extern "C" fn pktkit_ticks() -> c_int {
    ((now_ns() - start_ns()) / TICK_NS) as c_int
}

/// `cprng_fast32(9)`.
#[no_mangle]
pub extern "C" fn cprng_fast32() -> u32 {
    let mut v: u32 = 0;
    // SAFETY: fills 4 bytes of a live u32.
    unsafe { libc::getrandom((&mut v as *mut u32).cast(), 4, 0) };
    v
}

/// The driver's option `key` as an integer (pktkit extension).
///
/// # Safety
/// `dev` must be a device the adapter attached; `key` a C string.
#[no_mangle]
pub unsafe extern "C" fn pktkit_device_getprop_int(
    dev: *mut sys::device,
    key: *const c_char,
    def: c_long,
) -> c_long {
    // SAFETY: forwarded contract.
    unsafe { prop(dev.cast(), key) }.unwrap_or(def)
}

/// The option `key` of the device behind `dict` (a `device_t`, as
/// `device_properties` hands it out), parsed as `T`.
///
/// # Safety
/// `dict` must be a device the adapter attached; `key` a C string.
unsafe fn prop<T: std::str::FromStr>(dict: *mut c_void, key: *const c_char) -> Option<T> {
    let dev: *mut sys::device = dict.cast();
    if dev.is_null() {
        return None;
    }
    // SAFETY: forwarded contract.
    let (ctx, key) = unsafe { (ctx::from_ptr((*dev).dv_pktkit), cstr(key)) };
    ctx.and_then(|c| c.options.get(key))
        .and_then(|v| v.parse().ok())
}

/// Stores `v` through `out` when there is one; whether there was.
///
/// # Safety
/// `out` must be writable when `v` is `Some`.
unsafe fn store<T>(v: Option<T>, out: *mut T) -> bool {
    match v {
        Some(v) if !out.is_null() => {
            // SAFETY: forwarded contract.
            unsafe { out.write(v) };
            true
        }
        _ => false,
    }
}

/// `device_properties(9)`: the device's dictionary (its options).
#[no_mangle]
pub extern "C" fn device_properties(dev: *mut sys::device) -> *mut c_void {
    dev.cast()
}

/// `prop_dictionary_get_bool(3)`: `1`/`0`, `true`/`false`, `yes`/`no`.
///
/// # Safety
/// As for [`device_properties`]'s result; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn prop_dictionary_get_bool(
    dict: *mut c_void,
    key: *const c_char,
    out: *mut bool,
) -> bool {
    // SAFETY: forwarded contract.
    let v: Option<String> = unsafe { prop(dict, key) };
    let b = v.and_then(|v| match v.as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    });
    // SAFETY: forwarded contract.
    unsafe { store(b, out) }
}

/// `prop_dictionary_get_int32(3)`.
///
/// # Safety
/// As for [`prop_dictionary_get_bool`].
#[no_mangle]
pub unsafe extern "C" fn prop_dictionary_get_int32(
    dict: *mut c_void,
    key: *const c_char,
    out: *mut i32,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe { store(prop(dict, key), out) }
}

/// `prop_dictionary_get_uint32(3)`.
///
/// # Safety
/// As for [`prop_dictionary_get_bool`].
#[no_mangle]
pub unsafe extern "C" fn prop_dictionary_get_uint32(
    dict: *mut c_void,
    key: *const c_char,
    out: *mut u32,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe { store(prop(dict, key), out) }
}

/// `prop_dictionary_get_uint64(3)`.
///
/// # Safety
/// As for [`prop_dictionary_get_bool`].
#[no_mangle]
pub unsafe extern "C" fn prop_dictionary_get_uint64(
    dict: *mut c_void,
    key: *const c_char,
    out: *mut u64,
) -> bool {
    // SAFETY: forwarded contract.
    unsafe { store(prop(dict, key), out) }
}

/// Attached devices by driver name and unit, for `device_lookup`.
struct Device {
    name: String,
    unit: c_int,
    dev: usize,
}

fn devices() -> std::sync::MutexGuard<'static, Vec<Device>> {
    static DEVICES: std::sync::Mutex<Vec<Device>> = std::sync::Mutex::new(Vec::new());
    lock(&DEVICES)
}

/// Records an attached device (the adapter, at attach).
pub fn register_device(name: &str, unit: c_int, dev: *mut sys::device) {
    devices().push(Device {
        name: name.to_owned(),
        unit,
        dev: dev as usize,
    });
}

/// Forgets a device (the adapter, when it frees it).
pub fn unregister_device(dev: *mut sys::device) {
    devices().retain(|d| d.dev != dev as usize);
}

/// Runs `f` on the attached device of `cd`'s driver with `unit` (null if
/// none) while the registry is locked, so the device cannot be freed
/// meanwhile. Names are per process: with two stacks in one process the
/// device attached first answers.
///
/// # Safety
/// `cd` must be null or a cfdriver with a C-string name.
unsafe fn with_device<R>(
    cd: *const sys::cfdriver,
    unit: c_int,
    f: impl FnOnce(*mut sys::device) -> R,
) -> R {
    let list = devices();
    let dev = if cd.is_null() {
        ptr::null_mut()
    } else {
        // SAFETY: forwarded contract.
        let name = unsafe { cstr((*cd).cd_name) };
        list.iter()
            .find(|d| d.name == name && d.unit == unit)
            .map_or(ptr::null_mut(), |d| d.dev as *mut sys::device)
    };
    f(dev)
}

/// `device_lookup(9)`: the attached device of `cd`'s driver with `unit`.
///
/// # Safety
/// `cd` must be null or a cfdriver with a C-string name.
#[no_mangle]
pub unsafe extern "C" fn device_lookup(cd: *const sys::cfdriver, unit: c_int) -> *mut sys::device {
    // SAFETY: forwarded contract.
    unsafe { with_device(cd, unit, |d| d) }
}

/// `device_lookup_private(9)`: that device's softc, or NULL.
///
/// # Safety
/// As for [`device_lookup`].
#[no_mangle]
pub unsafe extern "C" fn device_lookup_private(
    cd: *const sys::cfdriver,
    unit: c_int,
) -> *mut c_void {
    // SAFETY: forwarded contract; a registered device stays allocated while
    // the registry is locked (it is unregistered before it is freed).
    unsafe {
        with_device(cd, unit, |d| {
            if d.is_null() {
                ptr::null_mut()
            } else {
                (*d).dv_private
            }
        })
    }
}

// ---------------------------------------------------------------------------
// kmutex: a futex lock (states 0 free, 1 held, 2 held with waiters).

const MUTEX_MAGIC: u32 = 0x6b6d_7478;

thread_local! {
    static TID: Cell<i32> = const { Cell::new(0) };
}

fn tid() -> i32 {
    TID.with(|t| {
        if t.get() == 0 {
            // SAFETY: gettid has no preconditions.
            t.set(unsafe { libc::gettid() });
        }
        t.get()
    })
}

/// # Safety
/// `m` must point to a live kmutex.
unsafe fn state<'a>(m: *mut sys::kmutex) -> &'a AtomicU32 {
    // SAFETY: mtx_state is an aligned u32 that is only accessed atomically.
    unsafe { AtomicU32::from_ptr(ptr::addr_of_mut!((*m).mtx_state)) }
}

/// # Safety
/// `m` must point to a live kmutex.
unsafe fn owner<'a>(m: *const sys::kmutex) -> &'a AtomicI32 {
    // SAFETY: mtx_owner is an aligned i32 only accessed atomically.
    unsafe { AtomicI32::from_ptr(ptr::addr_of!((*m).mtx_owner).cast_mut()) }
}

fn futex(word: &AtomicU32, op: c_int, val: u32) {
    // SAFETY: FUTEX_WAIT/WAKE on a live aligned u32; spurious returns are
    // handled by the callers' loops.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op | libc::FUTEX_PRIVATE_FLAG,
            val,
            ptr::null::<libc::timespec>(),
        )
    };
}

/// `mutex_init(9)`.
///
/// # Safety
/// `m` must point to writable kmutex storage.
#[no_mangle]
pub unsafe extern "C" fn mutex_init(m: *mut sys::kmutex, _t: c_uint, ipl: c_int) {
    // SAFETY: forwarded contract.
    unsafe {
        m.write(sys::kmutex {
            mtx_state: 0,
            mtx_owner: 0,
            mtx_ipl: ipl,
            mtx_magic: MUTEX_MAGIC,
        })
    };
}

/// `mutex_destroy(9)`.
///
/// # Safety
/// `m` must be an initialised, unheld kmutex.
#[no_mangle]
pub unsafe extern "C" fn mutex_destroy(m: *mut sys::kmutex) {
    // SAFETY: forwarded contract.
    unsafe { (*m).mtx_magic = 0 };
}

/// `mutex_enter(9)`.
///
/// # Safety
/// `m` must be an initialised kmutex not held by this thread.
#[no_mangle]
pub unsafe extern "C" fn mutex_enter(m: *mut sys::kmutex) {
    // SAFETY: forwarded contract.
    let s = unsafe { state(m) };
    if s.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        let mut spins = 0;
        loop {
            if spins < 100 {
                spins += 1;
                if s.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    break;
                }
                std::hint::spin_loop();
                continue;
            }
            if s.swap(2, Ordering::Acquire) == 0 {
                break;
            }
            futex(s, libc::FUTEX_WAIT, 2);
        }
    }
    // SAFETY: forwarded contract.
    unsafe { owner(m) }.store(tid(), Ordering::Relaxed);
}

/// `mutex_tryenter(9)`.
///
/// # Safety
/// `m` must be an initialised kmutex.
#[no_mangle]
pub unsafe extern "C" fn mutex_tryenter(m: *mut sys::kmutex) -> c_int {
    // SAFETY: forwarded contract.
    let ok = unsafe { state(m) }
        .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_ok();
    if ok {
        // SAFETY: forwarded contract.
        unsafe { owner(m) }.store(tid(), Ordering::Relaxed);
    }
    ok as c_int
}

/// `mutex_exit(9)`.
///
/// # Safety
/// `m` must be held by this thread.
#[no_mangle]
pub unsafe extern "C" fn mutex_exit(m: *mut sys::kmutex) {
    // SAFETY: forwarded contract.
    unsafe { owner(m) }.store(0, Ordering::Relaxed);
    // SAFETY: forwarded contract.
    let s = unsafe { state(m) };
    if s.swap(0, Ordering::Release) == 2 {
        futex(s, libc::FUTEX_WAKE, 1);
    }
}

/// `mutex_owned(9)`: whether the calling thread holds `m`.
///
/// # Safety
/// `m` must be an initialised kmutex.
#[no_mangle]
pub unsafe extern "C" fn mutex_owned(m: *const sys::kmutex) -> c_int {
    // SAFETY: forwarded contract.
    (unsafe { owner(m) }.load(Ordering::Relaxed) == tid()) as c_int
}

/// `mutex_obj_alloc(9)`.
#[no_mangle]
pub extern "C" fn mutex_obj_alloc(t: c_uint, ipl: c_int) -> *mut sys::kmutex {
    let m = Box::into_raw(Box::new(sys::kmutex::default()));
    // SAFETY: m is fresh, writable storage.
    unsafe { mutex_init(m, t, ipl) };
    m
}

/// `mutex_obj_hold(9)`: objects here are freed once, by their creator.
#[no_mangle]
pub extern "C" fn mutex_obj_hold(_m: *mut sys::kmutex) {}

/// `mutex_obj_free(9)`.
///
/// # Safety
/// `m` must come from `mutex_obj_alloc` and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn mutex_obj_free(m: *mut sys::kmutex) -> bool {
    if !m.is_null() {
        // SAFETY: forwarded contract.
        drop(unsafe { Box::from_raw(m) });
    }
    true
}

// ---------------------------------------------------------------------------
// softint

/// `softint_establish(9)`: the handler runs from the device's service pass.
#[no_mangle]
pub extern "C" fn softint_establish(
    flags: c_uint,
    func: Option<unsafe extern "C" fn(*mut c_void)>,
    arg: *mut c_void,
) -> *mut c_void {
    let (Some(ctx), Some(func)) = (ctx::current(), func) else {
        log::error!(target: "bsd", "softint_establish outside a driver entry or without a handler");
        return ptr::null_mut();
    };
    let si = Box::new(SoftInt {
        func,
        arg,
        mpsafe: flags & sys::SOFTINT_MPSAFE != 0,
        pending: Default::default(),
        ctx: ctx as *const DevCtx,
    });
    let p = &*si as *const SoftInt as *mut c_void;
    lock(&ctx.softints).push(si);
    p
}

/// `softint_schedule(9)`.
///
/// # Safety
/// `cookie` must come from `softint_establish`.
#[no_mangle]
pub unsafe extern "C" fn softint_schedule(cookie: *mut c_void) {
    // SAFETY: forwarded contract: the SoftInt lives as long as its device.
    let Some(si) = (unsafe { cookie.cast::<SoftInt>().as_ref() }) else {
        return;
    };
    if !si.pending.swap(true, Ordering::AcqRel) {
        // SAFETY: the context outlives its softints.
        if let Some(c) = unsafe { si.ctx.as_ref() } {
            ctx::signal(c.softint_fd.as_raw_fd());
        }
    }
}

/// `softint_disestablish(9)`: the handler never runs again.
///
/// # Safety
/// `cookie` must come from `softint_establish`.
#[no_mangle]
pub unsafe extern "C" fn softint_disestablish(cookie: *mut c_void) {
    // SAFETY: forwarded contract.
    let Some(si) = (unsafe { cookie.cast::<SoftInt>().as_ref() }) else {
        return;
    };
    // SAFETY: the context outlives its softints.
    if let Some(c) = unsafe { si.ctx.as_ref() } {
        lock(&c.softints).retain(|s| !ptr::eq(&**s, si));
    }
}

// ---------------------------------------------------------------------------
// callout: each device's callouts are polled from its service pass, and one
// timerfd is armed for the earliest deadline.

const C_PENDING: u32 = sys::CALLOUT_PENDING;
const C_FIRED: u32 = sys::CALLOUT_FIRED;
const C_INVOKING: u32 = sys::CALLOUT_INVOKING;

/// # Safety
/// `c` must point to a live callout.
unsafe fn cstate<'a>(c: *mut sys::callout) -> &'a AtomicU32 {
    // SAFETY: c_state is an aligned u32 accessed atomically.
    unsafe { AtomicU32::from_ptr(ptr::addr_of_mut!((*c).c_state)) }
}

/// Arms `ctx`'s timerfd for `when` if that is earlier than what it waits for.
pub fn arm_timer(ctx: &DevCtx, when: u64) {
    let mut next = lock(&ctx.timer_next);
    if when >= *next {
        return;
    }
    *next = when;
    set_timerfd(ctx, when);
}

fn set_timerfd(ctx: &DevCtx, when: u64) {
    let ts = if when == u64::MAX {
        libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }
    } else {
        let when = when.max(1);
        libc::timespec {
            tv_sec: (when / 1_000_000_000) as libc::time_t,
            tv_nsec: (when % 1_000_000_000) as libc::c_long,
        }
    };
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: ts,
    };
    // SAFETY: arms our own timerfd with a live itimerspec (absolute time).
    unsafe {
        libc::timerfd_settime(
            ctx.timerfd.as_raw_fd(),
            libc::TFD_TIMER_ABSTIME,
            &spec,
            ptr::null_mut(),
        )
    };
}

/// `callout_init(9)`: registers the callout with the current device.
///
/// # Safety
/// `c` must point to writable callout storage that lives until
/// `callout_destroy`.
#[no_mangle]
pub unsafe extern "C" fn callout_init(c: *mut sys::callout, flags: c_uint) {
    let ctx = ctx::current();
    // SAFETY: forwarded contract.
    unsafe {
        c.write(sys::callout {
            c_func: None,
            c_arg: ptr::null_mut(),
            c_ctx: ctx.map_or(ptr::null_mut(), |c| c as *const DevCtx as *mut c_void),
            c_when: 0,
            c_flags: flags,
            c_state: 0,
            c_next: ptr::null_mut(),
        })
    };
    match ctx {
        Some(ctx) => lock(&ctx.callouts).push(c),
        None => {
            log::error!(target: "bsd", "callout_init outside a driver entry: it will never fire")
        }
    }
}

/// `callout_destroy(9)`.
///
/// # Safety
/// `c` must be an initialised callout.
#[no_mangle]
pub unsafe extern "C" fn callout_destroy(c: *mut sys::callout) {
    // SAFETY: forwarded contract.
    if let Some(ctx) = unsafe { ctx::from_ptr((*c).c_ctx) } {
        lock(&ctx.callouts).retain(|&x| x != c);
    }
    // SAFETY: forwarded contract.
    unsafe { cstate(c) }.store(0, Ordering::Release);
}

/// `callout_setfunc(9)`.
///
/// # Safety
/// `c` must be an initialised callout.
#[no_mangle]
pub unsafe extern "C" fn callout_setfunc(
    c: *mut sys::callout,
    func: Option<unsafe extern "C" fn(*mut c_void)>,
    arg: *mut c_void,
) {
    // SAFETY: forwarded contract.
    unsafe {
        (*c).c_func = func;
        (*c).c_arg = arg;
    }
}

/// `callout_schedule(9)`.
///
/// # Safety
/// `c` must be an initialised callout.
#[no_mangle]
pub unsafe extern "C" fn callout_schedule(c: *mut sys::callout, ticks: c_int) {
    let when = now_ns() + ticks.max(1) as u64 * TICK_NS;
    // SAFETY: forwarded contract.
    unsafe {
        (*c).c_when = when;
        cstate(c).fetch_or(C_PENDING, Ordering::AcqRel);
        cstate(c).fetch_and(!C_FIRED, Ordering::AcqRel);
        if let Some(ctx) = ctx::from_ptr((*c).c_ctx) {
            arm_timer(ctx, when);
        }
    }
}

/// `callout_reset(9)`.
///
/// # Safety
/// `c` must be an initialised callout.
#[no_mangle]
pub unsafe extern "C" fn callout_reset(
    c: *mut sys::callout,
    ticks: c_int,
    func: Option<unsafe extern "C" fn(*mut c_void)>,
    arg: *mut c_void,
) {
    // SAFETY: forwarded contract.
    unsafe {
        callout_setfunc(c, func, arg);
        callout_schedule(c, ticks);
    }
}

/// `callout_stop(9)`: returns whether it had fired (or was running).
///
/// # Safety
/// `c` must be an initialised callout.
#[no_mangle]
pub unsafe extern "C" fn callout_stop(c: *mut sys::callout) -> bool {
    // SAFETY: forwarded contract.
    let old = unsafe { cstate(c) }.fetch_and(!C_PENDING, Ordering::AcqRel);
    old & C_PENDING == 0 && old & (C_FIRED | C_INVOKING) != 0
}

/// `callout_halt(9)`: stops it and waits for a running invocation on
/// another thread (MP-safe drivers), dropping `interlock` meanwhile.
///
/// # Safety
/// `c` must be an initialised callout; `interlock` null or a kmutex the
/// caller holds.
#[no_mangle]
pub unsafe extern "C" fn callout_halt(c: *mut sys::callout, interlock: *mut c_void) -> bool {
    // SAFETY: forwarded contract.
    let fired = unsafe { callout_stop(c) };
    // SAFETY: forwarded contract.
    let st = unsafe { cstate(c) };
    if st.load(Ordering::Acquire) & C_INVOKING != 0 && RUNNING.with(Cell::get) != c {
        let il = interlock.cast::<sys::kmutex>();
        if !il.is_null() {
            // SAFETY: the caller holds it.
            unsafe { mutex_exit(il) };
        }
        while st.load(Ordering::Acquire) & C_INVOKING != 0 {
            std::thread::yield_now();
        }
        if !il.is_null() {
            // SAFETY: re-taken as the caller expects.
            unsafe { mutex_enter(il) };
        }
    }
    fired
}

/// `callout_pending(9)`.
///
/// # Safety
/// `c` must be an initialised callout.
#[no_mangle]
pub unsafe extern "C" fn callout_pending(c: *mut sys::callout) -> bool {
    // SAFETY: forwarded contract.
    unsafe { cstate(c) }.load(Ordering::Acquire) & C_PENDING != 0
}

/// `callout_expired(9)`.
///
/// # Safety
/// `c` must be an initialised callout.
#[no_mangle]
pub unsafe extern "C" fn callout_expired(c: *mut sys::callout) -> bool {
    // SAFETY: forwarded contract.
    unsafe { cstate(c) }.load(Ordering::Acquire) & C_FIRED != 0
}

/// `callout_active(9)`.
///
/// # Safety
/// `c` must be an initialised callout.
#[no_mangle]
pub unsafe extern "C" fn callout_active(c: *mut sys::callout) -> bool {
    // SAFETY: forwarded contract.
    unsafe { cstate(c) }.load(Ordering::Acquire) & (C_PENDING | C_FIRED) != 0
}

/// `callout_invoking(9)`.
///
/// # Safety
/// `c` must be an initialised callout.
#[no_mangle]
pub unsafe extern "C" fn callout_invoking(c: *mut sys::callout) -> bool {
    // SAFETY: forwarded contract.
    unsafe { cstate(c) }.load(Ordering::Acquire) & C_INVOKING != 0
}

/// `callout_ack(9)`.
///
/// # Safety
/// `c` must be an initialised callout.
#[no_mangle]
pub unsafe extern "C" fn callout_ack(c: *mut sys::callout) {
    // SAFETY: forwarded contract.
    unsafe { cstate(c) }.fetch_and(!C_INVOKING, Ordering::AcqRel);
}

thread_local! {
    static RUNNING: Cell<*mut sys::callout> = const { Cell::new(ptr::null_mut()) };
}

/// Runs `ctx`'s due callouts and re-arms its timer; returns how many ran.
/// Called from the device's service pass, inside the driver's lock for a
/// serialized driver.
pub fn run_callouts(ctx: &DevCtx) -> usize {
    crate::ctx::drain(ctx.timerfd.as_raw_fd());
    let now = now_ns();
    let mut ran = 0;
    // Run one due callout at a time: a callout may reset, stop or destroy
    // any callout (itself included), so the list is re-read every round.
    // Bounded, so a callout re-armed with 0 ticks cannot spin us forever.
    for _ in 0..64 {
        let due = lock(&ctx.callouts).iter().copied().find(|&c| {
            // SAFETY: listed callouts are live until callout_destroy removes them.
            unsafe { cstate(c).load(Ordering::Acquire) & C_PENDING != 0 && (*c).c_when <= now }
        });
        let Some(c) = due else { break };
        // SAFETY: c is live (see above).
        let (func, arg, mpsafe) = unsafe {
            cstate(c).fetch_and(!C_PENDING, Ordering::AcqRel);
            cstate(c).fetch_or(C_FIRED | C_INVOKING, Ordering::AcqRel);
            (
                (*c).c_func,
                (*c).c_arg,
                (*c).c_flags & sys::CALLOUT_MPSAFE != 0,
            )
        };
        if let Some(f) = func {
            let _e = Entered::new(ctx);
            let _giant = ctx.giant_for(mpsafe);
            RUNNING.with(|r| r.set(c));
            // SAFETY: the driver's callout function with the argument it gave.
            unsafe { f(arg) };
            RUNNING.with(|r| r.set(ptr::null_mut()));
        }
        // SAFETY: the callout may have been destroyed by its own function
        // only through callout_destroy, which leaves the storage to the
        // driver (still live: it is in the softc).
        unsafe { cstate(c) }.fetch_and(!C_INVOKING, Ordering::AcqRel);
        ran += 1;
    }
    let next = lock(&ctx.callouts)
        .iter()
        .filter_map(|&c| {
            // SAFETY: listed callouts are live.
            unsafe { (cstate(c).load(Ordering::Acquire) & C_PENDING != 0).then(|| (*c).c_when) }
        })
        .min()
        .unwrap_or(u64::MAX);
    let mut tn = lock(&ctx.timer_next);
    *tn = next;
    set_timerfd(ctx, next);
    ran
}

/// Runs `ctx`'s pending softints; returns how many ran.
pub fn run_softints(ctx: &DevCtx) -> usize {
    let due: Vec<(unsafe extern "C" fn(*mut c_void), *mut c_void, bool)> = lock(&ctx.softints)
        .iter()
        .filter(|s| s.pending.swap(false, Ordering::AcqRel))
        .map(|s| (s.func, s.arg, s.mpsafe))
        .collect();
    for &(f, arg, mpsafe) in &due {
        let _e = Entered::new(ctx);
        let _giant = ctx.giant_for(mpsafe);
        // SAFETY: the driver's softint handler with its argument.
        unsafe { f(arg) };
    }
    due.len()
}

// ---------------------------------------------------------------------------
// evcnt

/// `evcnt_attach_dynamic(9)`: listed in the device's counters.
///
/// # Safety
/// `ev` must live until `evcnt_detach`; the strings must be static.
#[no_mangle]
pub unsafe extern "C" fn evcnt_attach_dynamic(
    ev: *mut sys::evcnt,
    ty: c_int,
    parent: *const sys::evcnt,
    group: *const c_char,
    name: *const c_char,
) {
    // SAFETY: forwarded contract.
    unsafe {
        (*ev).ev_count = 0;
        (*ev).ev_type = ty;
        (*ev).ev_parent = parent;
        (*ev).ev_group = group;
        (*ev).ev_name = name;
    }
    if let Some(ctx) = ctx::current() {
        lock(&ctx.evcnts).push(ev);
    }
}

/// `evcnt_attach_static(9)`.
///
/// # Safety
/// As for `evcnt_attach_dynamic`.
#[no_mangle]
pub unsafe extern "C" fn evcnt_attach_static(ev: *mut sys::evcnt) {
    if let Some(ctx) = ctx::current() {
        lock(&ctx.evcnts).push(ev);
    }
}

/// `evcnt_detach(9)`.
///
/// # Safety
/// `ev` must be attached.
#[no_mangle]
pub unsafe extern "C" fn evcnt_detach(ev: *mut sys::evcnt) {
    if let Some(ctx) = ctx::current() {
        lock(&ctx.evcnts).retain(|&e| e != ev);
    }
}

/// `(group name, count)` of every attached event counter of `ctx`.
pub fn evcnts(ctx: &DevCtx) -> Vec<(String, u64)> {
    lock(&ctx.evcnts)
        .iter()
        .map(|&e| {
            // SAFETY: attached counters live until detached; the count is
            // read racily, as NetBSD's vmstat -e does.
            unsafe {
                let count = ptr::read_volatile(ptr::addr_of!((*e).ev_count));
                (
                    format!("{} {}", cstr((*e).ev_group), cstr((*e).ev_name)),
                    count,
                )
            }
        })
        .collect()
}
