//! The runtime: it owns every thread of the stack.
//!
//! Drivers never spawn threads. Work is expressed as [`Task`]s placed on
//! worker threads; each worker polls its tasks in a loop, and when none made
//! progress for a while it asks them to arm their wake-ups
//! ([`Task::prepare_sleep`]) and sleeps in `epoll_wait` on the descriptors
//! they registered (eventfds from MSI-X/INTx, TAP and socket fds), bounded by
//! the earliest deadline a task asked for (timers). Deferred work (NetBSD's
//! softints) and timers (callouts) run on worker 0 through [`Runtime::defer`]
//! and [`Runtime::add_timer`].
//!
//! Concurrency classes are enforced here, by [`DriverLock`]: every call into
//! a driver goes through `DriverLock::enter`, which takes the driver's own
//! lock for a serialized driver, nothing for an MP-safe one, and one global
//! lock for every driver when the stack runs with the global fallback and any
//! serialized driver is attached (io-pkt's rule).

use std::collections::BinaryHeap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pktkit_native::Concurrency;

/// How many empty polling rounds a worker spins before trying to sleep.
const SPIN_ROUNDS: u32 = 200;
/// Longest sleep, so stop requests and new tasks are seen even without a wake.
const MAX_SLEEP: Duration = Duration::from_millis(500);

/// What one call of [`Task::poll`] achieved.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// The task moved packets or did other work; keep polling.
    pub busy: bool,
    /// The task wants to be polled again by this time even if nothing wakes it.
    pub deadline: Option<Instant>,
}

/// A unit of work the runtime polls on one of its workers.
pub trait Task: Send {
    /// A short name for logs.
    fn name(&self) -> &str;
    /// Does a bounded amount of work.
    fn poll(&mut self, now: Instant) -> Progress;
    /// Descriptors whose readability should wake the worker for this task.
    /// Read once, when the task is placed.
    fn wait_fds(&self) -> Vec<RawFd> {
        Vec::new()
    }
    /// Arms wake-ups before the worker sleeps; returns false if work is
    /// already pending (the worker then keeps polling). A task without wait
    /// fds that must be polled continuously returns false.
    fn prepare_sleep(&mut self) -> bool {
        true
    }
    /// Called after the worker woke up from a sleep this task agreed to.
    fn after_wake(&mut self) {}
}

/// Identifies a placed task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TaskId(u64);

enum Request {
    Add(TaskId, Box<dyn Task>),
    Remove(TaskId, mpsc::Sender<Box<dyn Task>>),
}

struct Worker {
    epoll: RawFd,
    wake: RawFd,
    requests: Mutex<Vec<Request>>,
    tasks: AtomicUsize,
    sleeps: AtomicU64,
}

impl Worker {
    fn new() -> std::io::Result<Worker> {
        // SAFETY: plain syscalls with checked results.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: as above.
        let wake = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if wake < 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: epoll is a descriptor we own.
            unsafe { libc::close(epoll) };
            return Err(e);
        }
        let w = Worker {
            epoll,
            wake,
            requests: Mutex::new(Vec::new()),
            tasks: AtomicUsize::new(0),
            sleeps: AtomicU64::new(0),
        };
        epoll_add(epoll, wake)?;
        Ok(w)
    }

    fn kick(&self) {
        signal_eventfd(self.wake);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // SAFETY: both descriptors are ours and closed once.
        unsafe {
            libc::close(self.epoll);
            libc::close(self.wake);
        }
    }
}

/// Writes 1 to an eventfd (wakes its waiters).
pub fn signal_eventfd(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64; an error (EAGAIN on overflow)
    // still leaves the eventfd readable, which is all a wake needs.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// Reads (and so resets) an eventfd; returns its count.
pub fn drain_eventfd(fd: RawFd) -> u64 {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64; EAGAIN leaves it 0.
    let n = unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
    if n == 8 {
        v
    } else {
        0
    }
}

fn epoll_add(epoll: RawFd, fd: RawFd) -> std::io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: fd as u64,
    };
    // SAFETY: ev is a live epoll_event; the kernel copies it.
    let r = unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    Ok(())
}

fn epoll_del(epoll: RawFd, fd: RawFd) {
    let mut ev = libc::epoll_event { events: 0, u64: 0 };
    // SAFETY: as in epoll_add; failure (fd already closed) is harmless.
    unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_DEL, fd, &mut ev) };
}

struct Shared {
    stop: AtomicBool,
    workers: Vec<Worker>,
    next_id: AtomicU64,
    deferred: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    timers: Mutex<TimerHeap>,
    softint_fd: RawFd,
    /// Task calls that panicked.
    panics: AtomicU64,
    /// The tasks stopped by a panic, oldest first.
    faults: Mutex<Vec<TaskFault>>,
}

/// A task the runtime stopped because one of its calls panicked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFault {
    /// The task's name (e.g. the interface and queue it polled).
    pub task: String,
    /// The panic's message.
    pub why: String,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: ours, closed once.
        unsafe { libc::close(self.softint_fd) };
    }
}

/// The runtime: a fixed set of worker threads.
pub struct Runtime {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// epoll/eventfd creation or thread spawn failed.
    #[error("runtime: {0}")]
    Io(#[from] std::io::Error),
    /// Zero workers asked for.
    #[error("runtime: at least one worker thread is needed")]
    NoWorkers,
}

impl Runtime {
    /// Starts `workers` worker threads (named `pktkit-wN`).
    pub fn new(workers: usize) -> Result<Runtime, RuntimeError> {
        if workers == 0 {
            return Err(RuntimeError::NoWorkers);
        }
        let ws = (0..workers)
            .map(|_| Worker::new())
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: plain syscall, checked.
        let softint_fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if softint_fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            workers: ws,
            next_id: AtomicU64::new(1),
            deferred: Mutex::new(Vec::new()),
            timers: Mutex::new(TimerHeap::default()),
            softint_fd,
            panics: AtomicU64::new(0),
            faults: Mutex::new(Vec::new()),
        });
        let mut threads = Vec::new();
        for i in 0..workers {
            let sh = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("pktkit-w{i}"))
                    .spawn(move || worker_loop(sh, i))?,
            );
        }
        let rt = Runtime { shared, threads };
        rt.spawn_on(
            0,
            Box::new(SoftTask {
                shared: Arc::downgrade(&rt.shared),
            }),
        );
        Ok(rt)
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
    }

    /// Places a task on the least loaded worker.
    pub fn spawn(&self, task: Box<dyn Task>) -> TaskId {
        let w = (0..self.workers())
            .min_by_key(|&i| self.shared.workers[i].tasks.load(Ordering::Relaxed))
            .unwrap_or(0);
        self.spawn_on(w, task)
    }

    /// Places a task on worker `worker` (modulo the worker count).
    pub fn spawn_on(&self, worker: usize, task: Box<dyn Task>) -> TaskId {
        let id = TaskId(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let w = &self.shared.workers[worker % self.workers()];
        w.tasks.fetch_add(1, Ordering::Relaxed);
        lock(&w.requests).push(Request::Add(id, task));
        w.kick();
        id
    }

    /// Takes a task off its worker and returns it (waits for the worker to
    /// finish its current round). `None` if no such task.
    pub fn remove(&self, id: TaskId) -> Option<Box<dyn Task>> {
        for w in &self.shared.workers {
            let (tx, rx) = mpsc::channel();
            lock(&w.requests).push(Request::Remove(id, tx));
            w.kick();
            // The worker drops the sender if it does not have the task.
            if let Ok(t) = rx.recv() {
                w.tasks.fetch_sub(1, Ordering::Relaxed);
                return Some(t);
            }
        }
        None
    }

    /// Runs `f` soon on worker 0 (a softint).
    pub fn defer(&self, f: Box<dyn FnOnce() + Send>) {
        lock(&self.shared.deferred).push(f);
        signal_eventfd(self.shared.softint_fd);
    }

    /// Calls `f` after `after`, then every `period` if given, until `f`
    /// returns false or the timer is cancelled. Runs on worker 0 (a callout).
    pub fn add_timer(
        &self,
        after: Duration,
        period: Option<Duration>,
        f: Box<dyn FnMut() -> bool + Send>,
    ) -> TimerId {
        let id = TimerId(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        lock(&self.shared.timers).push(Instant::now() + after, period, id, f);
        signal_eventfd(self.shared.softint_fd);
        id
    }

    /// Cancels a timer; returns whether it was pending.
    pub fn cancel_timer(&self, id: TimerId) -> bool {
        lock(&self.shared.timers).cancel(id)
    }

    /// How many times each worker went to sleep (for idle checks).
    pub fn sleeps(&self) -> Vec<u64> {
        self.shared
            .workers
            .iter()
            .map(|w| w.sleeps.load(Ordering::Relaxed))
            .collect()
    }

    /// The tasks stopped because a call into them panicked (a driver or
    /// protocol bug): the rest of the stack runs on without them.
    pub fn faults(&self) -> Vec<TaskFault> {
        lock(&self.shared.faults).clone()
    }

    /// Stops every worker and joins them; tasks still placed are dropped.
    pub fn shutdown(mut self) {
        self.stop_threads();
    }

    fn stop_threads(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for w in &self.shared.workers {
            w.kick();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// A task on a worker: `dead` once one of its calls panicked (it is no
/// longer called, its descriptors are no longer watched, and it stays until
/// removed so its owner gets it back).
struct Placed {
    id: TaskId,
    task: Box<dyn Task>,
    fds: Vec<RawFd>,
    dead: bool,
}

impl Placed {
    /// Runs `f` on the task unless it is dead; a panic in `f` marks it dead
    /// (the rest of the worker's tasks run on).
    fn call<R: Default>(
        &mut self,
        shared: &Shared,
        epoll: RawFd,
        f: impl FnOnce(&mut dyn Task) -> R,
    ) -> R {
        if self.dead {
            return R::default();
        }
        let task = &mut *self.task;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(task))) {
            Ok(r) => r,
            Err(payload) => {
                for &fd in &self.fds {
                    epoll_del(epoll, fd);
                }
                self.dead = true;
                record_panic(shared, self.task.name(), payload);
                R::default()
            }
        }
    }
}

/// Logs and records a panic caught in `what`.
fn record_panic(shared: &Shared, what: &str, payload: Box<dyn std::any::Any + Send>) {
    let why = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    log::error!("{what} panicked and is stopped: {why}");
    shared.panics.fetch_add(1, Ordering::Relaxed);
    lock(&shared.faults).push(TaskFault {
        task: what.to_owned(),
        why,
    });
}

fn worker_loop(shared: Arc<Shared>, index: usize) {
    let me = &shared.workers[index];
    let mut tasks: Vec<Placed> = Vec::new();
    let mut idle = 0u32;
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 32];
    while !shared.stop.load(Ordering::Acquire) {
        let reqs = std::mem::take(&mut *lock(&me.requests));
        for r in reqs {
            match r {
                Request::Add(id, t) => {
                    let fds = t.wait_fds();
                    for &fd in &fds {
                        if let Err(e) = epoll_add(me.epoll, fd) {
                            log::warn!("task {}: cannot watch fd {fd}: {e}", t.name());
                        }
                    }
                    tasks.push(Placed {
                        id,
                        task: t,
                        fds,
                        dead: false,
                    });
                }
                Request::Remove(id, reply) => {
                    if let Some(pos) = tasks.iter().position(|p| p.id == id) {
                        let p = tasks.swap_remove(pos);
                        if !p.dead {
                            for &fd in &p.fds {
                                epoll_del(me.epoll, fd);
                            }
                        }
                        let _ = reply.send(p.task);
                    }
                }
            }
        }
        let now = Instant::now();
        let mut busy = false;
        let mut deadline: Option<Instant> = None;
        for t in tasks.iter_mut() {
            let p = t.call(&shared, me.epoll, |t| t.poll(now));
            busy |= p.busy;
            if let Some(d) = p.deadline {
                deadline = Some(deadline.map_or(d, |x| x.min(d)));
            }
        }
        if busy || deadline.is_some_and(|d| d <= now) {
            idle = 0;
            continue;
        }
        idle += 1;
        if idle < SPIN_ROUNDS {
            std::hint::spin_loop();
            continue;
        }
        // Everyone idle: arm wake-ups, then sleep if all agree.
        let mut may_sleep = true;
        for t in tasks.iter_mut() {
            // A dead task agrees to sleep (Default for bool is false: map it).
            may_sleep &= t
                .call(&shared, me.epoll, |t| Some(t.prepare_sleep()))
                .unwrap_or(true);
        }
        if may_sleep && lock(&me.requests).is_empty() {
            let timeout = deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(MAX_SLEEP)
                .min(MAX_SLEEP);
            me.sleeps.fetch_add(1, Ordering::Relaxed);
            let ms = timeout.as_micros().div_ceil(1000) as i32;
            // SAFETY: events is a live array of the length passed.
            let n =
                unsafe { libc::epoll_wait(me.epoll, events.as_mut_ptr(), events.len() as i32, ms) };
            for ev in events.iter().take(n.max(0) as usize) {
                if ev.u64 == me.wake as u64 {
                    drain_eventfd(me.wake);
                }
            }
        }
        for t in tasks.iter_mut() {
            t.call(&shared, me.epoll, |t| t.after_wake());
        }
        idle = 0;
    }
}

/// Identifies a runtime timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(u64);

struct TimerEntry {
    when: Instant,
    id: TimerId,
}

impl PartialEq for TimerEntry {
    fn eq(&self, o: &Self) -> bool {
        self.when == o.when && self.id == o.id
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for TimerEntry {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.when.cmp(&self.when).then(o.id.cmp(&self.id))
    }
}

type TimerFn = Box<dyn FnMut() -> bool + Send>;

#[derive(Default)]
struct TimerHeap {
    heap: BinaryHeap<TimerEntry>,
    live: std::collections::HashMap<TimerId, (Option<Duration>, TimerFn)>,
}

impl TimerHeap {
    fn push(&mut self, when: Instant, period: Option<Duration>, id: TimerId, f: TimerFn) {
        self.heap.push(TimerEntry { when, id });
        self.live.insert(id, (period, f));
    }

    fn cancel(&mut self, id: TimerId) -> bool {
        self.live.remove(&id).is_some()
    }
}

/// Worker 0's task that runs deferred work and due timers.
struct SoftTask {
    shared: std::sync::Weak<Shared>,
}

impl Task for SoftTask {
    fn name(&self) -> &str {
        "softint"
    }

    fn poll(&mut self, now: Instant) -> Progress {
        let Some(sh) = self.shared.upgrade() else {
            return Progress::default();
        };
        let work = std::mem::take(&mut *lock(&sh.deferred));
        let busy = !work.is_empty();
        for f in work {
            // One deferred call that panics is reported and dropped; the
            // others, and the timers, run on.
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                record_panic(&sh, "softint", p);
            }
        }
        // Run due timers without holding the heap lock during the callback,
        // so a callback may add or cancel timers.
        loop {
            let due = {
                let mut th = lock(&sh.timers);
                match th.heap.peek() {
                    Some(top) if top.when <= now => {
                        let e = th.heap.pop();
                        e.and_then(|e| th.live.remove(&e.id).map(|f| (e.id, f)))
                    }
                    _ => break,
                }
            };
            if let Some((id, (period, mut f))) = due {
                let again = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut f)) {
                    Ok(again) => again,
                    Err(p) => {
                        // A callout that panics is cancelled.
                        record_panic(&sh, "callout", p);
                        false
                    }
                };
                if let (true, Some(p)) = (again, period) {
                    lock(&sh.timers).push(now + p, Some(p), id, f);
                }
            }
        }
        let deadline = {
            let th = lock(&sh.timers);
            th.heap
                .iter()
                .filter(|e| th.live.contains_key(&e.id))
                .map(|e| e.when)
                .min()
        };
        Progress { busy, deadline }
    }

    fn wait_fds(&self) -> Vec<RawFd> {
        self.shared
            .upgrade()
            .map(|s| vec![s.softint_fd])
            .unwrap_or_default()
    }

    fn after_wake(&mut self) {
        if let Some(sh) = self.shared.upgrade() {
            drain_eventfd(sh.softint_fd);
        }
    }
}

/// The stack-wide rule for serialized drivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// Each serialized driver has its own lock; others run in parallel.
    PerDriver,
    /// While any serialized driver is attached, all drivers share one lock.
    Global,
}

impl std::str::FromStr for Fallback {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "per-driver" => Ok(Fallback::PerDriver),
            "global" => Ok(Fallback::Global),
            _ => Err(format!("unknown fallback '{s}' (per-driver or global)")),
        }
    }
}

/// The shared state behind every [`DriverLock`] of one stack.
#[derive(Debug)]
pub struct LockPolicy {
    mode: Fallback,
    serialized: AtomicUsize,
    unlocked_inflight: AtomicUsize,
    global: Mutex<()>,
}

impl LockPolicy {
    /// A policy for a stack running with `mode`.
    pub fn new(mode: Fallback) -> Arc<LockPolicy> {
        Arc::new(LockPolicy {
            mode,
            serialized: AtomicUsize::new(0),
            unlocked_inflight: AtomicUsize::new(0),
            global: Mutex::new(()),
        })
    }

    /// The fallback mode.
    pub fn mode(&self) -> Fallback {
        self.mode
    }

    /// Whether every driver currently runs under the global lock.
    pub fn global_active(&self) -> bool {
        self.mode == Fallback::Global && self.serialized.load(Ordering::SeqCst) > 0
    }
}

/// Enforces one driver's concurrency class: hold the guard from
/// [`DriverLock::enter`] around every call into the driver.
#[derive(Clone)]
pub struct DriverLock {
    class: Concurrency,
    own: Arc<Mutex<()>>,
    policy: Arc<LockPolicy>,
}

/// Proof that the caller may enter the driver.
pub enum EntryGuard<'a> {
    /// MP-safe driver, no lock; in global mode counted so the switch to the
    /// global lock can wait for it.
    Unlocked(Option<&'a LockPolicy>),
    /// The driver's own lock or the global one.
    Locked(MutexGuard<'a, ()>),
}

impl Drop for EntryGuard<'_> {
    fn drop(&mut self) {
        if let EntryGuard::Unlocked(Some(p)) = self {
            p.unlocked_inflight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl DriverLock {
    /// Registers a driver of `class` under `policy`. Attaching a serialized
    /// driver in global mode waits until no unlocked call is in flight, so
    /// from then on every driver is entered under the global lock.
    pub fn attach(class: Concurrency, policy: &Arc<LockPolicy>) -> DriverLock {
        if class == Concurrency::Serialized {
            policy.serialized.fetch_add(1, Ordering::SeqCst);
            if policy.mode == Fallback::Global {
                while policy.unlocked_inflight.load(Ordering::SeqCst) != 0 {
                    std::hint::spin_loop();
                }
            }
        }
        DriverLock {
            class,
            own: Arc::new(Mutex::new(())),
            policy: policy.clone(),
        }
    }

    /// Unregisters the driver (call once, at detach).
    pub fn detach(&self) {
        if self.class == Concurrency::Serialized {
            self.policy.serialized.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The driver's class.
    pub fn class(&self) -> Concurrency {
        self.class
    }

    /// Enters the driver; the returned guard must live across the call.
    #[inline]
    pub fn enter(&self) -> EntryGuard<'_> {
        let p = &*self.policy;
        if p.mode == Fallback::Global {
            if p.serialized.load(Ordering::SeqCst) > 0 {
                return EntryGuard::Locked(lock(&p.global));
            }
            if self.class == Concurrency::MpSafe {
                // Dekker-style: announce the unlocked entry, then re-check
                // that no serialized driver arrived meanwhile (SeqCst pairs
                // with the increment and the wait in `attach`).
                p.unlocked_inflight.fetch_add(1, Ordering::SeqCst);
                if p.serialized.load(Ordering::SeqCst) == 0 {
                    return EntryGuard::Unlocked(Some(p));
                }
                p.unlocked_inflight.fetch_sub(1, Ordering::SeqCst);
                return EntryGuard::Locked(lock(&p.global));
            }
        }
        match self.class {
            Concurrency::Serialized => EntryGuard::Locked(lock(&self.own)),
            Concurrency::MpSafe => EntryGuard::Unlocked(None),
        }
    }
}

/// Locks a mutex, continuing past poisoning (the data are plain lists).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    struct Counter(Arc<AtomicU32>, u32);
    impl Task for Counter {
        fn name(&self) -> &str {
            "counter"
        }
        fn poll(&mut self, _: Instant) -> Progress {
            if self.1 > 0 {
                self.1 -= 1;
                self.0.fetch_add(1, Ordering::Relaxed);
                return Progress {
                    busy: true,
                    deadline: None,
                };
            }
            Progress::default()
        }
    }

    #[test]
    fn tasks_run_and_come_back() {
        let rt = Runtime::new(2).unwrap();
        let c = Arc::new(AtomicU32::new(0));
        let id = rt.spawn(Box::new(Counter(c.clone(), 1000)));
        let t0 = Instant::now();
        while c.load(Ordering::Relaxed) < 1000 && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(c.load(Ordering::Relaxed), 1000);
        assert!(rt.remove(id).is_some());
        assert!(rt.remove(id).is_none());
    }

    #[test]
    fn timers_and_deferred_work_run() {
        let rt = Runtime::new(1).unwrap();
        let (tx, rx) = mpsc::channel();
        let tx2 = tx.clone();
        rt.defer(Box::new(move || tx2.send("softint").unwrap()));
        let mut n = 0;
        rt.add_timer(
            Duration::from_millis(20),
            Some(Duration::from_millis(10)),
            Box::new(move || {
                n += 1;
                tx.send("tick").unwrap();
                n < 3
            }),
        );
        let got: Vec<_> = (0..4)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(got, ["softint", "tick", "tick", "tick"]);
        assert!(
            rx.recv_timeout(Duration::from_millis(100)).is_err(),
            "periodic timer must stop"
        );
    }

    struct Bomb(Arc<AtomicU32>);
    impl Task for Bomb {
        fn name(&self) -> &str {
            "bomb"
        }
        fn poll(&mut self, _: Instant) -> Progress {
            if self.0.fetch_add(1, Ordering::Relaxed) == 10 {
                panic!("driver bug");
            }
            Progress {
                busy: true,
                deadline: None,
            }
        }
    }

    #[test]
    fn a_panicking_task_stops_alone() {
        let rt = Runtime::new(1).unwrap();
        let polls = Arc::new(AtomicU32::new(0));
        let bomb = rt.spawn(Box::new(Bomb(polls.clone())));
        let c = Arc::new(AtomicU32::new(0));
        let counter = rt.spawn(Box::new(Counter(c.clone(), 100_000)));
        let t0 = Instant::now();
        while c.load(Ordering::Relaxed) < 100_000 && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
        // The other task on the same worker ran to the end...
        assert_eq!(c.load(Ordering::Relaxed), 100_000);
        // ...the panicking one was not called again...
        assert_eq!(polls.load(Ordering::Relaxed), 11);
        let faults = rt.faults();
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert_eq!(faults[0].task, "bomb");
        assert_eq!(faults[0].why, "driver bug");
        // ...and both come back to their owner (the worker still answers).
        assert!(rt.remove(bomb).is_some());
        assert!(rt.remove(counter).is_some());
        // Deferred work and timers survive a panicking callback too.
        rt.defer(Box::new(|| panic!("softint bug")));
        let (tx, rx) = mpsc::channel();
        rt.defer(Box::new(move || tx.send(()).unwrap()));
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(rt.faults().len(), 2);
    }

    #[test]
    fn idle_workers_sleep() {
        let rt = Runtime::new(2).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let s1 = rt.sleeps();
        std::thread::sleep(Duration::from_millis(1100));
        let s2 = rt.sleeps();
        // Asleep in epoll: at most a few wake-ups per second (MAX_SLEEP), not spinning.
        for (a, b) in s1.iter().zip(&s2) {
            assert!(
                b - a <= 6,
                "worker woke {} times in 1.1 s while idle",
                b - a
            );
        }
    }
}
