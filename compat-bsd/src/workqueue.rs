//! workqueue(9) (`<sys/workqueue.h>`): deferred work in thread context,
//! run from the device's service pass.
//!
//! The runtime owns every thread, so a queue has no thread of its own:
//! `workqueue_enqueue` appends the work and signals the device's softint
//! eventfd, and the next `service` call runs the queues ([`run_works`])
//! after the softints, each queue in FIFO order. As for softints, a work
//! runs under the driver's lock: the runtime's driver lock for a
//! serialized driver, the device's giant lock for an MP-safe driver whose
//! queue lacks `WQ_MPSAFE`.
//!
//! The works of one queue never run at the same time (NetBSD gives a
//! queue one thread): whoever runs one -- the service pass, or
//! `workqueue_wait` inline -- marks it `running` under the queue's mutex
//! first, and the others wait on the queue's condition variable.
//!
//! Lock order: the driver's lock for the queue (the giant lock, see
//! [`DevCtx::giant_for`]) before a work is claimed. A thread that claimed
//! a work never waits for the giant lock, so a non-MP-safe path that holds
//! the giant lock and waits in `workqueue_wait` cannot wait on a claimed
//! work that waits on it.
//!
//! The C handle is the queue's `Arc` pointer; each call looks it up in
//! the device's list and keeps a clone for its duration, so a work that
//! destroys its own queue does not free it under the caller.
//!
//! Driver bugs are survived, not trusted: a work enqueued while still
//! queued is counted and ignored (the queue stays a list of distinct
//! works); a queue destroyed with works pending drops them with an error
//! in the log.

use std::collections::VecDeque;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;

use crate::ctx::{self, lock, DevCtx, Entered};
use crate::sys;

/// A driver's work function: `func(work, arg)`.
pub type WorkFn = unsafe extern "C" fn(*mut sys::work, *mut c_void);

/// What a queue holds, behind its mutex.
#[derive(Default)]
struct State {
    /// Works waiting, oldest first (addresses of `struct work`).
    queue: VecDeque<usize>,
    /// The work running and the thread running it.
    running: Option<(usize, ThreadId)>,
}

impl State {
    /// Takes the oldest work and marks it running by this thread; the
    /// caller has seen that no other thread runs one. `None` when the
    /// queue is empty.
    fn claim(&mut self) -> Option<usize> {
        let wk = self.queue.pop_front()?;
        self.running = Some((wk, std::thread::current().id()));
        Some(wk)
    }
}

/// One `struct workqueue`.
pub struct WorkQueue {
    /// Its name, for messages and counters.
    pub name: String,
    func: WorkFn,
    arg: *mut c_void,
    /// `WQ_MPSAFE`: runs without the driver's lock.
    pub mpsafe: bool,
    ctx: *const DevCtx,
    state: Mutex<State>,
    idle: Condvar,
    /// Works run.
    pub ran: AtomicU64,
    /// Enqueues of a work that was still queued (ignored).
    pub double_enqueues: AtomicU64,
}

// SAFETY: `arg` and `ctx` are handed back to the driver's own code, whose
// access is serialized as the module documentation says; the rest is
// behind the mutex or atomic.
unsafe impl Send for WorkQueue {}
// SAFETY: as for Send.
unsafe impl Sync for WorkQueue {}

impl WorkQueue {
    /// Runs `wk`, marked running by the caller, who holds the driver's
    /// lock for this queue (`ctx.giant_for(self.mpsafe)`, taken before
    /// the claim); then marks the queue idle.
    fn run(&self, ctx: &DevCtx, wk: usize) {
        {
            let _e = Entered::new(ctx);
            // SAFETY: the driver's work function with a work it enqueued
            // (it lives in its softc until the queue no longer holds it).
            unsafe { (self.func)(wk as *mut sys::work, self.arg) };
        }
        self.ran.fetch_add(1, Ordering::Relaxed);
        lock(&self.state).running = None;
        self.idle.notify_all();
    }

    /// Takes the oldest work once no other thread runs one; marks it
    /// running by this thread. `None` when the queue is empty.
    fn take(&self) -> Option<usize> {
        let mut st = lock(&self.state);
        while st.running.is_some() {
            st = self.idle.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        st.claim()
    }

    /// Works waiting.
    pub fn pending(&self) -> usize {
        lock(&self.state).queue.len()
    }

    /// The device the queue belongs to.
    fn ctx(&self) -> &DevCtx {
        // SAFETY: `ctx` is set at create from the device entered, whose
        // context outlives its queues (they are forgotten at detach,
        // before it goes).
        unsafe { &*self.ctx }
    }

    /// Drops the works still queued in `st`, this queue's state (a
    /// driver bug): counted on the device and logged with `why`.
    fn drop_pending(&self, st: &mut State, why: &str) {
        let n = st.queue.len();
        if n == 0 {
            return;
        }
        log::error!(
            target: "bsd",
            "workqueue {}: {why}; {n} work(s) dropped, never run",
            self.name
        );
        self.ctx()
            .works_dropped
            .fetch_add(n as u64, Ordering::Relaxed);
        st.queue.clear();
    }
}

/// The queue behind a C handle, kept alive for the caller: looked up in
/// the list of the device entered (else of the device the handle names)
/// and cloned. `None`, logged, for a null handle or a queue no longer in
/// the list (destroyed).
///
/// # Safety
/// `wq` must be null or come from `workqueue_create`; when no device is
/// entered it must not be destroyed (its device is read from it).
unsafe fn queue(wq: *mut sys::workqueue, what: &str) -> Option<Arc<WorkQueue>> {
    let p = wq.cast::<WorkQueue>().cast_const();
    let ctx = match ctx::current() {
        Some(c) => Some(c),
        // SAFETY: forwarded contract: a live handle is an
        // `Arc<WorkQueue>`'s pointer.
        None => unsafe { p.as_ref() }.map(WorkQueue::ctx),
    };
    let found = ctx.and_then(|c| {
        lock(&c.workqueues)
            .iter()
            .find(|q| ptr::eq(Arc::as_ptr(q), p))
            .cloned()
    });
    if found.is_none() {
        log::error!(target: "bsd", "{what}: no such queue {wq:p} (destroyed?); ignored");
    }
    found
}

/// `workqueue_create(9)`: a queue of the device being attached. Returns
/// `EINVAL` without a handler or result pointer, `ENXIO` outside a driver
/// entry (there is no device whose service could run it).
///
/// # Safety
/// `wqp` must be writable; `name` null or a C string.
#[no_mangle]
pub unsafe extern "C" fn workqueue_create(
    wqp: *mut *mut sys::workqueue,
    name: *const c_char,
    func: Option<WorkFn>,
    arg: *mut c_void,
    _prio: c_int,
    _ipl: c_int,
    flags: c_int,
) -> c_int {
    let name = if name.is_null() {
        "workqueue".to_owned()
    } else {
        // SAFETY: forwarded contract.
        unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned()
    };
    let (Some(func), false) = (func, wqp.is_null()) else {
        log::error!(target: "bsd", "workqueue_create {name}: no work function or result pointer");
        return libc::EINVAL;
    };
    let Some(ctx) = ctx::current() else {
        log::error!(target: "bsd", "workqueue_create {name}: outside a driver entry");
        return libc::ENXIO;
    };
    let wq = Arc::new(WorkQueue {
        name,
        func,
        arg,
        mpsafe: flags as u32 & sys::WQ_MPSAFE != 0,
        ctx,
        state: Mutex::new(State::default()),
        idle: Condvar::new(),
        ran: AtomicU64::new(0),
        double_enqueues: AtomicU64::new(0),
    });
    // SAFETY: forwarded contract.
    unsafe { *wqp = Arc::as_ptr(&wq).cast_mut().cast() };
    lock(&ctx.workqueues).push(wq);
    0
}

/// `workqueue_enqueue(9)`: appends `wk` and wakes the service. A work
/// still queued is counted and left where it is.
///
/// # Safety
/// `wq` must come from `workqueue_create`; `wk` must stay valid until it
/// has run (or the queue is destroyed).
#[no_mangle]
pub unsafe extern "C" fn workqueue_enqueue(
    wq: *mut sys::workqueue,
    wk: *mut sys::work,
    _ci: *mut c_void,
) {
    if wk.is_null() {
        log::error!(target: "bsd", "workqueue_enqueue: no work");
        return;
    }
    // SAFETY: forwarded contract.
    let Some(q) = (unsafe { queue(wq, "workqueue_enqueue") }) else {
        return;
    };
    {
        let mut st = lock(&q.state);
        if st.queue.contains(&(wk as usize)) {
            drop(st);
            let n = q.double_enqueues.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 {
                log::warn!(
                    target: "bsd",
                    "workqueue {}: work {wk:p} enqueued while still queued (ignored, counted)",
                    q.name
                );
            }
            return;
        }
        st.queue.push_back(wk as usize);
    }
    ctx::signal(q.ctx().softint_fd.as_raw_fd());
}

/// `workqueue_wait(9)`: returns once `wk` is neither queued nor running.
/// A queued `wk` is run here, after the works queued before it (FIFO
/// holds); one running on another thread is waited for. Waiting for the
/// work this very thread runs would never return: logged and refused.
/// The driver's lock for the queue is taken before a work is claimed (see
/// the module documentation); a work run here may destroy the queue.
///
/// # Safety
/// `wq` must come from `workqueue_create`.
#[no_mangle]
pub unsafe extern "C" fn workqueue_wait(wq: *mut sys::workqueue, wk: *mut sys::work) {
    // SAFETY: forwarded contract.
    let Some(q) = (unsafe { queue(wq, "workqueue_wait") }) else {
        return;
    };
    let ctx = q.ctx();
    let me = std::thread::current().id();
    let wk = wk as usize;
    loop {
        let giant = ctx.giant_for(q.mpsafe);
        let mut st = lock(&q.state);
        match st.running {
            Some((w, t)) if t == me => {
                log::error!(
                    target: "bsd",
                    "workqueue {}: workqueue_wait from inside work {w:#x} (would deadlock; refused)",
                    q.name
                );
                return;
            }
            // Another thread runs a work of this queue (`wk` or one
            // before it): wait for it, then look again. (It holds the
            // driver's lock for the queue, so this thread does not.)
            Some(_) => {
                drop(giant);
                while st.running.is_some() {
                    st = q.idle.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            }
            None => {
                if !st.queue.contains(&wk) {
                    return;
                }
                let Some(next) = st.claim() else {
                    return;
                };
                drop(st);
                q.run(ctx, next);
                drop(giant);
            }
        }
    }
}

/// `workqueue_destroy(9)`: forgets the queue. Works still queued are a
/// driver bug: they are dropped (never run) and logged. A work running on
/// another thread is waited for first.
///
/// # Safety
/// `wq` must come from `workqueue_create`; it is invalid afterwards.
#[no_mangle]
pub unsafe extern "C" fn workqueue_destroy(wq: *mut sys::workqueue) {
    // SAFETY: forwarded contract.
    let Some(q) = (unsafe { queue(wq, "workqueue_destroy") }) else {
        return;
    };
    let me = std::thread::current().id();
    {
        let mut st = lock(&q.state);
        while st.running.is_some_and(|(_, t)| t != me) {
            st = q.idle.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        q.drop_pending(&mut st, "destroyed with work pending");
    }
    lock(&q.ctx().workqueues).retain(|w| !Arc::ptr_eq(w, &q));
}

/// Runs the works queued on `ctx`'s queues when the pass began, each
/// queue in FIFO order; returns how many ran. Works enqueued meanwhile
/// (a work that re-enqueues itself) wait for the next pass, which the
/// softint eventfd is signalled for, so one pass stays bounded.
pub fn run_works(ctx: &DevCtx) -> usize {
    // Only the queues with work, each with its bound for this pass.
    let queues: Vec<(Arc<WorkQueue>, usize)> = lock(&ctx.workqueues)
        .iter()
        .filter_map(|q| {
            let n = q.pending();
            (n > 0).then(|| (Arc::clone(q), n))
        })
        .collect();
    if queues.is_empty() {
        return 0;
    }
    let mut ran = 0;
    for (q, n) in &queues {
        for _ in 0..*n {
            // The driver's lock first, then the claim (lock order).
            let _giant = ctx.giant_for(q.mpsafe);
            let Some(wk) = q.take() else { break };
            q.run(ctx, wk);
            ran += 1;
        }
    }
    if queues.iter().any(|(q, _)| q.pending() > 0) {
        ctx::signal(ctx.softint_fd.as_raw_fd());
    }
    ran
}

/// `(name, count)` of each queue's counters, for the device's counters,
/// and `workqueue dropped works` once a work was dropped.
pub fn counters(ctx: &DevCtx) -> Vec<(String, u64)> {
    let mut v = Vec::new();
    let dropped = ctx.works_dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        v.push(("workqueue dropped works".to_owned(), dropped));
    }
    for q in lock(&ctx.workqueues).iter() {
        v.push((
            format!("workqueue {} works", q.name),
            q.ran.load(Ordering::Relaxed),
        ));
        v.push((
            format!("workqueue {} double enqueues", q.name),
            q.double_enqueues.load(Ordering::Relaxed),
        ));
    }
    v
}

/// Drops every queue of `ctx` (the device is gone); pending works are
/// dropped with an error in the log, as `workqueue_destroy` does.
pub fn forget_all(ctx: &DevCtx) {
    let queues = std::mem::take(&mut *lock(&ctx.workqueues));
    for q in queues {
        q.drop_pending(&mut lock(&q.state), "not destroyed at detach");
    }
}
