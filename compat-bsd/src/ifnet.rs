//! The interface layer of the KPI (`<net/if.h>`): attaching an ifnet to the
//! adapter, the receive queue behind `if_percpuq_enqueue`, deferred starts,
//! link state and receive polling.

use std::ffi::{c_int, c_void};
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::Ordering;

use pktkit_native::sys::mbuf;
use pktkit_native::Mbuf;

use crate::ctx::{self, lock, DevCtx, Poll, RxRing};
use crate::sys;

/// The context an ifnet belongs to.
///
/// # Safety
/// `ifp` must be null or an ifnet the adapter attached (or being attached).
pub unsafe fn ctx_of<'a>(ifp: *const sys::ifnet) -> Option<&'a DevCtx> {
    if ifp.is_null() {
        return None;
    }
    // SAFETY: forwarded contract: if_pktkit is set by if_attach from a live context.
    unsafe { ctx::from_ptr((*ifp).if_pktkit) }
}

/// `if_attach(9)`: records the interface with the device being attached.
///
/// # Safety
/// `ifp` must point to the driver's ifnet (in its softc), live until detach.
#[no_mangle]
pub unsafe extern "C" fn if_attach(ifp: *mut sys::ifnet) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { if_initialize(ifp) }
}

/// `if_initialize(9)`.
///
/// # Safety
/// As for `if_attach`.
#[no_mangle]
pub unsafe extern "C" fn if_initialize(ifp: *mut sys::ifnet) -> c_int {
    let Some(c) = ctx::current() else {
        log::error!(target: "bsd", "if_attach outside a driver attach");
        return libc::ENXIO;
    };
    // SAFETY: forwarded contract; attach runs on one thread before the
    // interface is shared.
    unsafe {
        let i = &mut *ifp;
        i.if_pktkit = c as *const DevCtx as *mut c_void;
        if i.if_percpuq.is_null() {
            i.if_percpuq = &c.rx as *const RxRing as *mut sys::if_percpuq;
        }
        if i.if_snd.ifq_maxlen <= 0 {
            i.if_snd.ifq_maxlen = sys::IFQ_MAXLEN as c_int;
        }
        let mpsafe = i.if_extflags & sys::IFEF_MPSAFE as c_int != 0;
        if mpsafe && i.if_snd.ifq_lock.is_null() {
            i.if_snd.ifq_lock = crate::kern::mutex_obj_alloc(0, 0);
        }
        if i.if_link_state == 0 {
            i.if_link_state = sys::LINK_STATE_UNKNOWN as c_int;
        }
    }
    c.ifp.set(ifp);
    0
}

/// `if_register(9)`: nothing more to do after `if_initialize`.
#[no_mangle]
pub extern "C" fn if_register(_ifp: *mut sys::ifnet) {}

/// `if_alloc_sadl`: the link address lives in the ifnet (`if_sadl_store`).
///
/// # Safety
/// `ifp` must be a live ifnet.
#[no_mangle]
pub unsafe extern "C" fn if_alloc_sadl(ifp: *mut sys::ifnet) {
    // SAFETY: forwarded contract.
    unsafe { (*ifp).if_sadl = ptr::addr_of_mut!((*ifp).if_sadl_store) };
}

/// `if_detach(9)`: frees what the interface queues hold.
///
/// # Safety
/// `ifp` must be an attached ifnet.
#[no_mangle]
pub unsafe extern "C" fn if_detach(ifp: *mut sys::ifnet) {
    // SAFETY: forwarded contract.
    unsafe {
        purge_snd(ifp);
        if let Some(c) = ctx_of(ifp) {
            c.rx.purge();
        }
        let q = &mut (*ifp).if_snd;
        if !q.ifq_lock.is_null() {
            crate::kern::mutex_obj_free(q.ifq_lock);
            q.ifq_lock = ptr::null_mut();
        }
    }
}

/// `if_deactivate(9)`.
#[no_mangle]
pub extern "C" fn if_deactivate(_ifp: *mut sys::ifnet) {}

/// Frees every packet waiting in `if_snd`.
///
/// # Safety
/// `ifp` must be a live ifnet; the caller is inside the driver's lock.
pub unsafe fn purge_snd(ifp: *mut sys::ifnet) {
    // SAFETY: forwarded contract.
    unsafe {
        let q = &mut (*ifp).if_snd;
        let mut m = q.ifq_head;
        while !m.is_null() {
            let next = (*m).m_hdr.mh_nextpkt;
            (*m).m_hdr.mh_nextpkt = ptr::null_mut();
            crate::mbuf::m_freem(m);
            m = next;
        }
        q.ifq_head = ptr::null_mut();
        q.ifq_tail = ptr::null_mut();
        q.ifq_len = 0;
    }
}

/// `if_init(9)`: the driver's init.
///
/// # Safety
/// `ifp` must be a live ifnet.
#[no_mangle]
pub unsafe extern "C" fn if_init(ifp: *mut sys::ifnet) -> c_int {
    // SAFETY: forwarded contract.
    match unsafe { (*ifp).if_init } {
        // SAFETY: the driver's function on its own ifnet.
        Some(f) => unsafe { f(ifp) },
        None => 0,
    }
}

/// `if_stop(9)`: the driver's stop.
///
/// # Safety
/// `ifp` must be a live ifnet.
#[no_mangle]
pub unsafe extern "C" fn if_stop(ifp: *mut sys::ifnet, disable: c_int) {
    // SAFETY: forwarded contract.
    if let Some(f) = unsafe { (*ifp).if_stop } {
        // SAFETY: the driver's function on its own ifnet.
        unsafe { f(ifp, disable) }
    }
}

/// `if_percpuq_create(9)`: the device's receive ring.
///
/// # Safety
/// `ifp` must be a live ifnet.
#[no_mangle]
pub unsafe extern "C" fn if_percpuq_create(ifp: *mut sys::ifnet) -> *mut sys::if_percpuq {
    // SAFETY: forwarded contract.
    match unsafe { ctx_of(ifp) }.or_else(ctx::current) {
        Some(c) => &c.rx as *const RxRing as *mut sys::if_percpuq,
        None => ptr::null_mut(),
    }
}

/// `if_percpuq_destroy(9)`: the ring lives with the device.
#[no_mangle]
pub extern "C" fn if_percpuq_destroy(_q: *mut sys::if_percpuq) {}

/// `if_percpuq_enqueue(9)`: hands a received packet to the stack; when the
/// receive ring is full the packet is dropped and counted.
///
/// # Safety
/// `q` must come from the ifnet's `if_percpuq`; `m` is a packet the caller
/// gives away.
#[no_mangle]
pub unsafe extern "C" fn if_percpuq_enqueue(q: *mut sys::if_percpuq, m: *mut mbuf) {
    if m.is_null() {
        return;
    }
    // SAFETY: forwarded contract: q is the RxRing of a live context.
    let Some(ring) = (unsafe { q.cast::<RxRing>().as_ref() }) else {
        // SAFETY: we own m.
        drop(unsafe { Mbuf::from_raw(m) });
        return;
    };
    if let Err(m) = ring.push(m) {
        ring.drops.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the ring gave it back; we own it.
        drop(unsafe { Mbuf::from_raw(m) });
    }
}

/// `if_deferred_start_init(9)`: starts are deferred to the service pass.
#[no_mangle]
pub extern "C" fn if_deferred_start_init(_ifp: *mut sys::ifnet, _f: *mut c_void) {}

/// `if_schedule_deferred_start(9)`: `if_start` runs from the next service
/// pass (woken at once).
///
/// # Safety
/// `ifp` must be an attached ifnet.
#[no_mangle]
pub unsafe extern "C" fn if_schedule_deferred_start(ifp: *mut sys::ifnet) {
    // SAFETY: forwarded contract.
    if let Some(c) = unsafe { ctx_of(ifp) } {
        if !c.deferred_start.swap(true, Ordering::AcqRel) {
            ctx::signal(c.softint_fd.as_raw_fd());
        }
    }
}

/// `if_link_state_change(9)`: the stack reads the new state at the end of
/// the service pass (or at once, on the control path).
///
/// # Safety
/// `ifp` must be an attached ifnet.
#[no_mangle]
pub unsafe extern "C" fn if_link_state_change(ifp: *mut sys::ifnet, state: c_int) {
    // SAFETY: forwarded contract.
    unsafe {
        if (*ifp).if_link_state == state {
            return;
        }
        (*ifp).if_link_state = state;
        if let Some(c) = ctx_of(ifp) {
            c.link_state.store(state, Ordering::Release);
            c.link_changed.store(true, Ordering::Release);
        }
    }
}

/// `if_poll_establish` (pktkit extension, see `<net/if.h>`).
///
/// # Safety
/// `ifp` must be an attached ifnet; `func` a handler that lives as long.
#[no_mangle]
pub unsafe extern "C" fn if_poll_establish(
    ifp: *mut sys::ifnet,
    func: Option<unsafe extern "C" fn(*mut c_void, c_int) -> c_int>,
    arg: *mut c_void,
) {
    // SAFETY: forwarded contract.
    let c = unsafe { ctx_of(ifp) }.or_else(ctx::current);
    if let (Some(c), Some(func)) = (c, func) {
        lock(&c.polls).push(Poll { func, arg });
    }
}

/// `ether_ifattach` (csrc/if_ethersubr.c) tells the adapter the interface
/// is Ethernet.
///
/// # Safety
/// `ifp` must be the ifnet of an ethercom being attached.
#[no_mangle]
pub unsafe extern "C" fn pktkit_ether_attached(ifp: *mut sys::ifnet) {
    // SAFETY: forwarded contract.
    if let Some(c) = unsafe { ctx_of(ifp) }.or_else(ctx::current) {
        c.ether.set(true);
        if c.ifp.get().is_null() {
            c.ifp.set(ifp);
        }
    }
}
