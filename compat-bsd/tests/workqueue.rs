//! workqueue(9) as a driver uses it, called as C would call it: works run
//! from the service pass only, in FIFO order; a double enqueue is counted
//! and ignored; `workqueue_wait` runs a queued work inline and waits for
//! one running on another thread; `workqueue_destroy` drops what is left.

use std::ffi::c_void;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
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

fn count(ctx: &DevCtx, key: &str) -> u64 {
    workqueue::counters(ctx)
        .into_iter()
        .find(|(k, _)| k == &format!("workqueue testwq {key}"))
        .map_or(u64::MAX, |(_, v)| v)
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
    assert_eq!(count(&ctx, "works"), 3);
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
    assert_eq!(count(&ctx, "double enqueues"), 1);
    assert_eq!(workqueue::run_works(&ctx), 2);
    assert_eq!(
        *log.ran.lock().unwrap(),
        [1, 2],
        "the queue was not corrupted"
    );
    // Once run, enqueueing it again is fine.
    // SAFETY: as above.
    unsafe { workqueue::workqueue_enqueue(wq, a.wk(), std::ptr::null_mut()) };
    assert_eq!(count(&ctx, "double enqueues"), 1);
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
    // SAFETY: wq is live; a outlives the queue.
    unsafe {
        workqueue::workqueue_enqueue(wq, a.wk(), std::ptr::null_mut());
        workqueue::workqueue_destroy(wq);
    }
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
