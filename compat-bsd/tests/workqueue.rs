//! workqueue(9) as a driver uses it, called as C would call it: works run
//! from the service pass only, in FIFO order; a double enqueue is counted
//! and ignored; `workqueue_wait` runs a queued work inline and waits for
//! one running on another thread; `workqueue_destroy` drops what is left.

use std::ffi::c_void;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pktkit_bsd::ctx::{self, DevCtx, Entered};
use pktkit_bsd::{sys, workqueue};

mod support;
use support::setup;

/// A work item as a driver embeds one, with an id to record.
#[repr(C)]
struct Item {
    wk: sys::work,
    id: u32,
}

impl Item {
    fn new(id: u32) -> Box<Item> {
        Box::new(Item {
            wk: sys::work::default(),
            id,
        })
    }

    fn wk(&mut self) -> *mut sys::work {
        &mut self.wk
    }
}

/// What the work function records, and how it may be held up.
#[derive(Default)]
struct Log {
    ran: Mutex<Vec<u32>>,
    started: AtomicBool,
    release: AtomicBool,
    hold: AtomicBool,
}

unsafe extern "C" fn record(wk: *mut sys::work, arg: *mut c_void) {
    // SAFETY: every work of these tests is the first member of an Item,
    // and the argument is the test's Log, both alive while queued.
    let (item, log) = unsafe { (&*wk.cast::<Item>(), &*arg.cast::<Log>()) };
    assert!(
        ctx::current().is_some(),
        "a work runs inside the device's entry"
    );
    log.started.store(true, Ordering::SeqCst);
    if log.hold.load(Ordering::SeqCst) {
        while !log.release.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    log.ran.lock().unwrap().push(item.id);
}

/// `workqueue_create` on whichever device is entered: the errno and the
/// queue.
fn try_create(
    name: &std::ffi::CStr,
    func: Option<workqueue::WorkFn>,
    arg: *mut c_void,
    flags: u32,
) -> (i32, *mut sys::workqueue) {
    let mut wq: *mut sys::workqueue = std::ptr::null_mut();
    // SAFETY: wq is writable; the name is a C string; the callers keep
    // `arg` alive as long as the queue.
    let e = unsafe {
        workqueue::workqueue_create(&mut wq, name.as_ptr(), func, arg, 0, 0, flags as i32)
    };
    (e, wq)
}

/// A queue "testwq" of `ctx` whose works record into `log`.
fn create(ctx: &DevCtx, log: &Log, flags: u32) -> *mut sys::workqueue {
    let _e = Entered::new(ctx);
    let arg = (log as *const Log).cast_mut().cast();
    let (e, wq) = try_create(c"testwq", Some(record), arg, flags);
    assert_eq!(e, 0);
    assert!(!wq.is_null());
    wq
}

/// Queue `queue`'s counter `key`; `None` when there is no such counter.
fn count(ctx: &DevCtx, queue: &str, key: &str) -> Option<u64> {
    workqueue::counters(ctx)
        .into_iter()
        .find(|(k, _)| k == &format!("workqueue {queue} {key}"))
        .map(|(_, v)| v)
}

#[test]
fn works_run_in_fifo_order_from_the_service_pass_only() {
    let ctx = setup("wq-fifo");
    let log = Log::default();
    let wq = create(&ctx, &log, 0);
    let mut items: Vec<Box<Item>> = (1..=3).map(Item::new).collect();
    for i in [2, 0, 1] {
        // SAFETY: wq is live; the items outlive the queue's use of them.
        unsafe { workqueue::workqueue_enqueue(wq, items[i].wk(), std::ptr::null_mut()) };
    }
    assert!(log.ran.lock().unwrap().is_empty(), "enqueue runs nothing");
    assert!(
        ctx::drain(ctx.softint_fd.as_raw_fd()),
        "enqueue signals the service"
    );
    assert_eq!(workqueue::run_works(&ctx), 3);
    assert_eq!(*log.ran.lock().unwrap(), [3, 1, 2], "FIFO");
    assert_eq!(workqueue::run_works(&ctx), 0, "each work ran once");
    assert_eq!(count(&ctx, "testwq", "works"), Some(3));
    // SAFETY: wq is live and idle.
    unsafe { workqueue::workqueue_destroy(wq) };
    assert!(workqueue::counters(&ctx).is_empty(), "destroy forgets it");
}

#[test]
fn a_work_enqueued_twice_is_counted_and_runs_once() {
    let ctx = setup("wq-double");
    let log = Log::default();
    let wq = create(&ctx, &log, sys::WQ_MPSAFE | sys::WQ_PERCPU);
    let mut a = Item::new(1);
    let mut b = Item::new(2);
    // SAFETY: wq is live; the items outlive the queue's use of them.
    unsafe {
        workqueue::workqueue_enqueue(wq, a.wk(), std::ptr::null_mut());
        workqueue::workqueue_enqueue(wq, b.wk(), std::ptr::null_mut());
        workqueue::workqueue_enqueue(wq, a.wk(), std::ptr::null_mut());
    }
    assert_eq!(count(&ctx, "testwq", "double enqueues"), Some(1));
    assert_eq!(workqueue::run_works(&ctx), 2);
    assert_eq!(
        *log.ran.lock().unwrap(),
        [1, 2],
        "the queue was not corrupted"
    );
    // Once run, enqueueing it again is fine.
    // SAFETY: as above.
    unsafe { workqueue::workqueue_enqueue(wq, a.wk(), std::ptr::null_mut()) };
    assert_eq!(count(&ctx, "testwq", "double enqueues"), Some(1));
    assert_eq!(workqueue::run_works(&ctx), 1);
    // SAFETY: wq is live and idle.
    unsafe { workqueue::workqueue_destroy(wq) };
}

#[test]
fn wait_runs_a_queued_work_inline_after_those_before_it() {
    let ctx = setup("wq-wait");
    let log = Log::default();
    let wq = create(&ctx, &log, 0);
    let mut items: Vec<Box<Item>> = (1..=3).map(Item::new).collect();
    for it in items.iter_mut() {
        // SAFETY: wq is live; the items outlive the queue's use of them.
        unsafe { workqueue::workqueue_enqueue(wq, it.wk(), std::ptr::null_mut()) };
    }
    // From outside the service (a driver's stop path on the control thread).
    // SAFETY: wq is live.
    unsafe { workqueue::workqueue_wait(wq, items[1].wk()) };
    assert_eq!(
        *log.ran.lock().unwrap(),
        [1, 2],
        "up to the work waited for"
    );
    // A work that is not queued: nothing to wait for, nothing runs.
    // SAFETY: wq is live.
    unsafe { workqueue::workqueue_wait(wq, items[0].wk()) };
    assert_eq!(log.ran.lock().unwrap().len(), 2);
    assert_eq!(workqueue::run_works(&ctx), 1);
    assert_eq!(*log.ran.lock().unwrap(), [1, 2, 3]);
    // SAFETY: wq is live and idle.
    unsafe { workqueue::workqueue_destroy(wq) };
}

#[test]
fn wait_waits_for_a_work_running_on_another_thread() {
    let ctx = setup("wq-running");
    let log = Arc::new(Log::default());
    log.hold.store(true, Ordering::SeqCst);
    let wq = create(&ctx, &log, sys::WQ_MPSAFE) as usize;
    let mut a = Item::new(7);
    let wk = a.wk() as usize;
    // SAFETY: wq is live; a outlives the queue's use of it.
    unsafe {
        workqueue::workqueue_enqueue(wq as *mut _, wk as *mut _, std::ptr::null_mut());
    }
    let service = {
        let ctx = ctx.clone();
        std::thread::spawn(move || workqueue::run_works(&ctx))
    };
    while !log.started.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let releaser = {
        let log = log.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            log.release.store(true, Ordering::SeqCst);
        })
    };
    // SAFETY: wq is live.
    unsafe { workqueue::workqueue_wait(wq as *mut _, wk as *mut _) };
    assert_eq!(
        *log.ran.lock().unwrap(),
        [7],
        "wait returned only once the running work had finished"
    );
    assert_eq!(service.join().expect("service"), 1);
    releaser.join().expect("releaser");
    // SAFETY: wq is live and idle.
    unsafe { workqueue::workqueue_destroy(wq as *mut _) };
}

#[test]
fn destroy_drops_pending_works_and_create_needs_a_device() {
    let ctx = setup("wq-destroy");
    let log = Log::default();
    let wq = create(&ctx, &log, 0);
    let mut a = Item::new(1);
    let mut b = Item::new(2);
    // SAFETY: wq is live; a and b outlive the queue.
    unsafe {
        workqueue::workqueue_enqueue(wq, a.wk(), std::ptr::null_mut());
        workqueue::workqueue_enqueue(wq, b.wk(), std::ptr::null_mut());
        workqueue::workqueue_destroy(wq);
    }
    assert_eq!(ctx.works_dropped.load(Ordering::SeqCst), 2, "both dropped");
    assert_eq!(
        workqueue::counters(&ctx),
        [("workqueue dropped works".to_owned(), 2)]
    );
    assert!(
        ctx::drain(ctx.softint_fd.as_raw_fd()),
        "the enqueues signalled"
    );
    assert_eq!(workqueue::run_works(&ctx), 0, "dropped, never run");
    assert!(log.ran.lock().unwrap().is_empty());

    let (e, wq2) = try_create(c"orphan", Some(record), std::ptr::null_mut(), 0);
    assert_eq!(e, libc::ENXIO, "no device entered: nobody could run it");
    assert!(wq2.is_null());
    let _e = Entered::new(&ctx);
    let (e, _) = try_create(c"nofn", None, std::ptr::null_mut(), 0);
    assert_eq!(e, libc::EINVAL);
}

unsafe extern "C" fn requeue(wk: *mut sys::work, arg: *mut c_void) {
    // SAFETY: arg is the test's queue handle cell, alive while queued.
    let (wq, runs) = unsafe { &*arg.cast::<(usize, Mutex<u32>)>() };
    let mut n = runs.lock().unwrap();
    *n += 1;
    if *n < 3 {
        // SAFETY: the queue is live; wk is the running work.
        unsafe { workqueue::workqueue_enqueue(*wq as *mut _, wk, std::ptr::null_mut()) };
    }
}

#[test]
fn a_work_that_requeues_itself_runs_once_per_pass() {
    let ctx = setup("wq-requeue");
    let mut cell = Box::new((0usize, Mutex::new(0u32)));
    let wq = {
        let _e = Entered::new(&ctx);
        let arg = (&mut *cell as *mut (usize, Mutex<u32>)).cast();
        let (e, wq) = try_create(c"requeue", Some(requeue), arg, 0);
        assert_eq!(e, 0);
        wq
    };
    cell.0 = wq as usize;
    let mut a = Item::new(1);
    // SAFETY: wq is live; a outlives it.
    unsafe { workqueue::workqueue_enqueue(wq, a.wk(), std::ptr::null_mut()) };
    ctx::drain(ctx.softint_fd.as_raw_fd());
    assert_eq!(workqueue::run_works(&ctx), 1);
    assert!(
        ctx::drain(ctx.softint_fd.as_raw_fd()),
        "a work left queued asks for another pass"
    );
    assert_eq!(workqueue::run_works(&ctx), 1);
    assert_eq!(workqueue::run_works(&ctx), 1);
    assert_eq!(workqueue::run_works(&ctx), 0);
    assert_eq!(*cell.1.lock().unwrap(), 3);
    // SAFETY: wq is live and idle.
    unsafe { workqueue::workqueue_destroy(wq) };
}

/// Runs `f` on a thread of its own and fails the test if it has not
/// returned within 10 s (a deadlock), instead of hanging the suite.
fn within_10s<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{what}: no return within 10 s (deadlock)"))
}

#[test]
fn a_giant_holder_waiting_for_a_work_does_not_deadlock_with_the_service() {
    // An MP-safe driver whose non-MP-safe path (a callout, say) holds the
    // giant lock and waits for a work of a non-MP-safe queue while the
    // service pass wants to run that queue. The service must take the
    // giant lock before it claims the work: claimed first, it would wait
    // for the giant lock while the holder waits for the claim to clear.
    // Whether the service reached its wait before workqueue_wait is a
    // matter of timing (50 ms given); with the lock order right the test
    // passes either way, and it cannot pass with the claim first once the
    // service got there.
    let ctx = setup("wq-giant-order");
    ctx.mpsafe.set(true);
    let log = Arc::new(Log::default());
    let wq = create(&ctx, &log, 0) as usize;
    let mut a = Item::new(5);
    let wk = a.wk() as usize;
    let ran = within_10s("holder", {
        let ctx = ctx.clone();
        move || {
            let giant = ctx.giant_for(false);
            assert!(giant.is_some(), "the holder took the giant lock");
            // SAFETY: wq is live; a outlives the queue's use of it.
            unsafe {
                workqueue::workqueue_enqueue(wq as *mut _, wk as *mut _, std::ptr::null_mut())
            };
            let service = {
                let ctx = ctx.clone();
                std::thread::spawn(move || workqueue::run_works(&ctx))
            };
            std::thread::sleep(Duration::from_millis(50));
            // SAFETY: wq is live.
            unsafe { workqueue::workqueue_wait(wq as *mut _, wk as *mut _) };
            drop(giant);
            service.join().expect("service")
        }
    });
    assert_eq!(*log.ran.lock().unwrap(), [5], "the holder ran it inline");
    assert_eq!(ran, 0, "the service found nothing left to run");
    // SAFETY: wq is live and idle.
    unsafe { workqueue::workqueue_destroy(wq as *mut _) };
}

/// What [`destroy_own_queue`] needs: its queue's handle and a count.
struct SelfDestroy {
    wq: usize,
    runs: AtomicUsize,
}

unsafe extern "C" fn destroy_own_queue(_wk: *mut sys::work, arg: *mut c_void) {
    // SAFETY: arg is the test's SelfDestroy, alive while queued.
    let me = unsafe { &*arg.cast::<SelfDestroy>() };
    me.runs.fetch_add(1, Ordering::SeqCst);
    // SAFETY: the queue is live until this call.
    unsafe { workqueue::workqueue_destroy(me.wq as *mut _) };
    // Reuse the memory a queue freed too early would have left, so that
    // workqueue_wait touching it afterwards would not go unnoticed.
    let junk = vec![0xffu8; std::mem::size_of::<workqueue::WorkQueue>() + 16];
    std::hint::black_box(&junk);
    std::mem::forget(junk);
}

#[test]
fn a_work_that_destroys_its_own_queue_survives_a_wait_from_outside() {
    let ctx = setup("wq-self-destroy");
    let mut me = Box::new(SelfDestroy {
        wq: 0,
        runs: AtomicUsize::new(0),
    });
    {
        let _e = Entered::new(&ctx);
        let arg = (&mut *me as *mut SelfDestroy).cast();
        let (e, wq) = try_create(c"selfdestroy", Some(destroy_own_queue), arg, 0);
        assert_eq!(e, 0);
        me.wq = wq as usize;
    }
    let mut a = Item::new(1);
    let wk = a.wk() as usize;
    let wq = me.wq;
    // SAFETY: wq is live; a outlives it.
    unsafe { workqueue::workqueue_enqueue(wq as *mut _, wk as *mut _, std::ptr::null_mut()) };
    within_10s("wait", move || {
        // SAFETY: wq is live when the wait begins (the work destroys it).
        unsafe { workqueue::workqueue_wait(wq as *mut _, wk as *mut _) };
    });
    assert_eq!(me.runs.load(Ordering::SeqCst), 1);
    assert!(
        workqueue::counters(&ctx).is_empty(),
        "the queue is gone, no work dropped"
    );
    assert_eq!(workqueue::run_works(&ctx), 0);
    // A destroyed queue's handle is refused, not used, from an entry.
    let _e = Entered::new(&ctx);
    // SAFETY: the handle is stale; with a device entered it is only
    // compared with the live queues', never read.
    unsafe { workqueue::workqueue_enqueue(wq as *mut _, wk as *mut _, std::ptr::null_mut()) };
    assert_eq!(workqueue::run_works(&ctx), 0);
}

/// What [`wait_for_other`] needs: the device, the queue and work it waits
/// for, and whether the giant lock was held while that work ran.
struct Nested {
    ctx: *const DevCtx,
    inner_wq: usize,
    inner_wk: usize,
    giant_held_inside: AtomicBool,
}

unsafe extern "C" fn wait_for_other(_wk: *mut sys::work, arg: *mut c_void) {
    // SAFETY: arg is the test's Nested, alive while queued.
    let n = unsafe { &*arg.cast::<Nested>() };
    // SAFETY: the queue is live; its work is queued.
    unsafe { workqueue::workqueue_wait(n.inner_wq as *mut _, n.inner_wk as *mut _) };
}

unsafe extern "C" fn note_giant(_wk: *mut sys::work, arg: *mut c_void) {
    // SAFETY: arg is the test's Nested, whose device outlives it.
    let n = unsafe { &*arg.cast::<Nested>() };
    // SAFETY: as above.
    let ctx = unsafe { &*n.ctx };
    n.giant_held_inside
        .store(ctx.giant.try_lock().is_err(), Ordering::SeqCst);
}

#[test]
fn a_non_mpsafe_work_waits_for_another_under_the_giant_lock_it_holds() {
    // An MP-safe driver, two queues without WQ_MPSAFE: the service pass
    // takes the giant lock for the outer work, which waits for the inner
    // work; run inline, the inner one needs the giant lock this thread
    // holds already (giant_for's re-entrant branch). Taken again it would
    // deadlock.
    let ctx = setup("wq-giant-nested");
    ctx.mpsafe.set(true);
    let mut nested = Box::new(Nested {
        ctx: Arc::as_ptr(&ctx),
        inner_wq: 0,
        inner_wk: 0,
        giant_held_inside: AtomicBool::new(false),
    });
    let arg: *mut c_void = (&mut *nested as *mut Nested).cast();
    let (outer, inner) = {
        let _e = Entered::new(&ctx);
        let (e, outer) = try_create(c"outer", Some(wait_for_other), arg, 0);
        assert_eq!(e, 0);
        let (e, inner) = try_create(c"inner", Some(note_giant), arg, 0);
        assert_eq!(e, 0);
        (outer, inner)
    };
    let mut a = Item::new(1);
    let mut b = Item::new(2);
    nested.inner_wq = inner as usize;
    nested.inner_wk = b.wk() as usize;
    // SAFETY: the queues are live; a and b outlive them.
    unsafe {
        workqueue::workqueue_enqueue(outer, a.wk(), std::ptr::null_mut());
        workqueue::workqueue_enqueue(inner, b.wk(), std::ptr::null_mut());
    }
    let ran = within_10s("service", {
        let ctx = ctx.clone();
        move || workqueue::run_works(&ctx)
    });
    assert_eq!(
        ran, 1,
        "the outer work ran in the pass, the inner inside it"
    );
    assert!(
        nested.giant_held_inside.load(Ordering::SeqCst),
        "the inner work ran under the giant lock"
    );
    assert_eq!(workqueue::run_works(&ctx), 0, "nothing left");
    assert_eq!(
        (count(&ctx, "outer", "works"), count(&ctx, "inner", "works")),
        (Some(1), Some(1))
    );
    // SAFETY: both queues are live and idle.
    unsafe {
        workqueue::workqueue_destroy(outer);
        workqueue::workqueue_destroy(inner);
    }
}
