//! Packet filter hooks (NetBSD's pfil(9)): functions that see every packet
//! an interface receives, before the protocol layer, and every packet it
//! sends, after the protocol layer built it, and may pass it (possibly
//! modified) or drop it.
//!
//! # Using it
//!
//! ```no_run
//! # use pktkit::pfil::{Direction, HookSpec, IfInfo, Verdict};
//! # use pktkit_native::Mbuf;
//! # fn demo(stack: &pktkit::stack::Stack) {
//! // Drop every frame tap0 receives from 02:00:00:00:00:99.
//! let id = stack.pfil().add(
//!     HookSpec::new("no-99").on("tap0").input(),
//!     |_dir: Direction, _ifp: &IfInfo, m: &mut Mbuf| {
//!         if m.data().get(6..12) == Some(&[2, 0, 0, 0, 0, 0x99][..]) {
//!             Verdict::Drop
//!         } else {
//!             Verdict::Pass
//!         }
//!     },
//! );
//! // ... later, while traffic flows:
//! stack.pfil().remove(id);
//! # }
//! ```
//!
//! - A hook is any [`Hook`]: a closure `Fn(Direction, &IfInfo, &mut Mbuf)
//!   -> Verdict + Send + Sync`, or a type implementing the trait. It runs on
//!   the worker that moves the packet: it must not block, sleep or allocate,
//!   and it must not panic. It may change the frame in place through the
//!   `&mut Mbuf` (e.g. rewrite a field); it must keep the frame a valid
//!   Ethernet frame.
//! - [`HookSpec`] says where it runs: on one interface (by name) or on all,
//!   on input, output or both, and its priority. Hooks run in ascending
//!   priority, then in the order they were added; the first `Drop` ends the
//!   walk and the packet is freed (and counted in the hook's counters).
//! - [`Pfil::add`], [`Pfil::remove`] and [`Pfil::replace`] work at any time
//!   while traffic flows.
//!
//! Where the stack calls the hooks: input, in the protocol layer's receive
//! (after the capture taps, so `tcpdump` sees what arrived, as with BPF on
//! NetBSD) and on a forwarding task's receive side; output, when the
//! protocol layer queues a frame it built (before the taps, so `tcpdump`
//! sees only what leaves) and on a forwarding task's transmit side.
//!
//! # Why the packet path never locks or allocates
//!
//! The hook list is published RCU-style: every change builds a new list
//! and swaps it in under [`Pfil`]'s mutex, bumping a generation counter.
//! Each packet path keeps a [`HookCache`]: a reference to the list it last
//! saw and that list's generation. Per burst it compares generations (one
//! atomic load); only after a change does it take the mutex once to pick
//! up the new list (a reference count increment, no allocation). The old
//! list is freed when the last path has moved on. Running the hooks of a
//! burst uses a fixed array on the stack, never the heap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pktkit_native::{Mbuf, PacketBatch, BATCH_MAX};

pub use crate::bpf::Direction;
use crate::runtime::lock;

/// What a hook decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The packet goes on (to the next hook, then its way).
    Pass,
    /// The packet is freed here.
    Drop,
}

/// The interface a packet is passing, as hooks see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfInfo {
    /// The stack's interface index.
    pub index: u32,
    /// The interface name (tap0, wm0).
    pub name: String,
}

/// A packet filter hook.
pub trait Hook: Send + Sync {
    /// Looks at (and may change) one packet going `dir` through `ifp`.
    /// Must not block, allocate or panic.
    fn check(&self, dir: Direction, ifp: &IfInfo, m: &mut Mbuf) -> Verdict;
}

impl<F> Hook for F
where
    F: Fn(Direction, &IfInfo, &mut Mbuf) -> Verdict + Send + Sync,
{
    fn check(&self, dir: Direction, ifp: &IfInfo, m: &mut Mbuf) -> Verdict {
        self(dir, ifp, m)
    }
}

/// Where and when a hook runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookSpec {
    /// A name for listings.
    pub name: String,
    /// Only this interface; every interface when `None`.
    pub ifname: Option<String>,
    /// Runs on input.
    pub input: bool,
    /// Runs on output.
    pub output: bool,
    /// Lower runs first; equal priorities run in the order added.
    pub priority: i32,
}

impl HookSpec {
    /// A hook called `name` on every interface, both directions, priority 0.
    pub fn new(name: &str) -> HookSpec {
        HookSpec {
            name: name.to_owned(),
            ifname: None,
            input: true,
            output: true,
            priority: 0,
        }
    }

    /// Only on interface `ifname`.
    pub fn on(mut self, ifname: &str) -> HookSpec {
        self.ifname = Some(ifname.to_owned());
        self
    }

    /// Only on input.
    pub fn input(mut self) -> HookSpec {
        self.input = true;
        self.output = false;
        self
    }

    /// Only on output.
    pub fn output(mut self) -> HookSpec {
        self.input = false;
        self.output = true;
        self
    }

    /// With priority `p` (lower runs first).
    pub fn priority(mut self, p: i32) -> HookSpec {
        self.priority = p;
        self
    }

    fn applies(&self, dir: Direction, ifp: &IfInfo) -> bool {
        let dir_ok = match dir {
            Direction::In => self.input,
            Direction::Out => self.output,
        };
        dir_ok && self.ifname.as_deref().is_none_or(|n| n == ifp.name)
    }
}

/// Identifies a registered hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HookId(u64);

/// Calls and drops of one hook (kept across [`Pfil::replace`]).
#[derive(Debug, Default)]
struct HookCounters {
    calls: AtomicU64,
    drops: AtomicU64,
}

struct Entry {
    id: HookId,
    seq: u64,
    spec: HookSpec,
    hook: Arc<dyn Hook>,
    counters: Arc<HookCounters>,
}

/// One published hook list, sorted by priority then order of addition.
type List = Arc<Vec<Arc<Entry>>>;

/// A registered hook as listings show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookInfo {
    /// Its id.
    pub id: HookId,
    /// Where and when it runs.
    pub spec: HookSpec,
    /// Packets it was called for.
    pub calls: u64,
    /// Packets it dropped.
    pub drops: u64,
}

struct Published {
    list: List,
    generation: u64,
}

/// The hooks of one stack.
///
/// Locking: `published` guards the list and its generation and is taken
/// only by writers and by a [`HookCache`] that saw `generation` change;
/// `generation` is also mirrored in an atomic so that the packet path can
/// check for changes without the lock.
pub struct Pfil {
    published: Mutex<Published>,
    generation: AtomicU64,
    next: AtomicU64,
}

impl Default for Pfil {
    fn default() -> Self {
        Self::new()
    }
}

impl Pfil {
    /// No hooks.
    pub fn new() -> Pfil {
        Pfil {
            published: Mutex::new(Published {
                list: Arc::new(Vec::new()),
                generation: 0,
            }),
            generation: AtomicU64::new(0),
            next: AtomicU64::new(1),
        }
    }

    /// Builds a new list from the current one with `edit` and publishes it.
    fn publish(&self, edit: impl FnOnce(&mut Vec<Arc<Entry>>)) {
        let mut p = lock(&self.published);
        let mut v: Vec<Arc<Entry>> = p.list.iter().cloned().collect();
        edit(&mut v);
        v.sort_by_key(|e| (e.spec.priority, e.seq));
        p.list = Arc::new(v);
        p.generation += 1;
        // Release: a path that sees the new generation and then takes the
        // lock finds the new list (the lock orders it anyway; the store
        // only tells it to look).
        self.generation.store(p.generation, Ordering::Release);
    }

    /// Registers `hook` where `spec` says; it runs from the next burst on.
    pub fn add(&self, spec: HookSpec, hook: impl Hook + 'static) -> HookId {
        self.add_arc(spec, Arc::new(hook))
    }

    /// [`Pfil::add`] with a shared hook object.
    pub fn add_arc(&self, spec: HookSpec, hook: Arc<dyn Hook>) -> HookId {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let id = HookId(seq);
        let e = Arc::new(Entry {
            id,
            seq,
            spec,
            hook,
            counters: Arc::default(),
        });
        self.publish(|v| v.push(e));
        id
    }

    /// Replaces the function of hook `id` (same place, same counters);
    /// returns false if there is no such hook.
    pub fn replace(&self, id: HookId, hook: Arc<dyn Hook>) -> bool {
        let mut found = false;
        self.publish(|v| {
            for e in v.iter_mut().filter(|e| e.id == id) {
                *e = Arc::new(Entry {
                    id,
                    seq: e.seq,
                    spec: e.spec.clone(),
                    hook: hook.clone(),
                    counters: e.counters.clone(),
                });
                found = true;
            }
        });
        found
    }

    /// Unregisters hook `id`; returns whether it was there. Packets already
    /// inside the hook finish with it; later bursts no longer call it.
    pub fn remove(&self, id: HookId) -> bool {
        let mut found = false;
        self.publish(|v| {
            let before = v.len();
            v.retain(|e| e.id != id);
            found = v.len() != before;
        });
        found
    }

    /// The hooks, in the order they run.
    pub fn hooks(&self) -> Vec<HookInfo> {
        lock(&self.published)
            .list
            .iter()
            .map(|e| HookInfo {
                id: e.id,
                spec: e.spec.clone(),
                calls: e.counters.calls.load(Ordering::Relaxed),
                drops: e.counters.drops.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// A packet path's view of the hooks.
    pub fn cache(self: &Arc<Self>) -> HookCache {
        let p = lock(&self.published);
        HookCache {
            pfil: self.clone(),
            list: p.list.clone(),
            generation: p.generation,
        }
    }
}

/// A packet path's snapshot of the hook list (see the module docs).
pub struct HookCache {
    pfil: Arc<Pfil>,
    list: List,
    generation: u64,
}

impl HookCache {
    /// Picks up a changed list: one atomic load when nothing changed.
    #[inline]
    pub fn refresh(&mut self) {
        if self.pfil.generation.load(Ordering::Acquire) == self.generation {
            return;
        }
        let p = lock(&self.pfil.published);
        // Dropping the old list may free it: that happens once per change,
        // not per packet.
        self.list = p.list.clone();
        self.generation = p.generation;
    }

    /// Whether no hook is registered (as of the last refresh).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Runs the hooks for one packet; the first `Drop` wins.
    pub fn run(&self, dir: Direction, ifp: &IfInfo, m: &mut Mbuf) -> Verdict {
        for e in self.list.iter() {
            if !e.spec.applies(dir, ifp) {
                continue;
            }
            e.counters.calls.fetch_add(1, Ordering::Relaxed);
            if e.hook.check(dir, ifp, m) == Verdict::Drop {
                e.counters.drops.fetch_add(1, Ordering::Relaxed);
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    }

    /// Refreshes, then runs the hooks over the packets of `batch` from
    /// position `from` on, freeing the dropped ones (the others keep their
    /// order); returns how many were dropped.
    pub fn filter_batch(
        &mut self,
        dir: Direction,
        ifp: &IfInfo,
        batch: &mut PacketBatch,
        from: usize,
    ) -> usize {
        self.refresh();
        if self.list.is_empty() || batch.len() <= from {
            return 0;
        }
        let mut keep = [true; BATCH_MAX];
        let mut drops = 0;
        for (k, m) in keep.iter_mut().zip(batch.iter_mut_from(from)) {
            if self.run(dir, ifp, m) == Verdict::Drop {
                *k = false;
                drops += 1;
            }
        }
        if drops == 0 {
            return 0;
        }
        let mut i = 0;
        batch.retain_from(from, |_| {
            let k = keep.get(i).copied().unwrap_or(true);
            i += 1;
            k
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pktkit_native::pool::{HugePages, OwnerId, Pool, PoolConfig};

    fn pool(name: &str) -> Pool {
        Pool::new(&PoolConfig {
            name: name.into(),
            buffers: 64,
            hugepages: HugePages::Never,
        })
        .unwrap()
    }

    fn ifp(name: &str) -> IfInfo {
        IfInfo {
            index: 1,
            name: name.into(),
        }
    }

    #[test]
    fn hooks_run_in_order_drop_and_modify() {
        let p = pool("pfil-order");
        let pf = Arc::new(Pfil::new());
        let mut cache = pf.cache();
        let mut b = PacketBatch::new();
        for i in 0..8u8 {
            let m = Mbuf::from_slice(&p, OwnerId::POOL, &[i; 60]).unwrap();
            b.push(m).unwrap();
        }
        // Nothing registered: nothing happens.
        assert_eq!(cache.filter_batch(Direction::In, &ifp("x0"), &mut b, 0), 0);
        // Priority 5 marks byte 1; priority 1 drops odd frames first.
        let mark = pf.add(
            HookSpec::new("mark").priority(5),
            |_: Direction, _: &IfInfo, m: &mut Mbuf| {
                if let Some(x) = m.data_mut().get_mut(1) {
                    *x = 0xee;
                }
                Verdict::Pass
            },
        );
        let odd = pf.add(
            HookSpec::new("odd").priority(1).on("x0").input(),
            |_: Direction, _: &IfInfo, m: &mut Mbuf| {
                if m.data()[0] % 2 == 1 {
                    Verdict::Drop
                } else {
                    Verdict::Pass
                }
            },
        );
        let names: Vec<String> = pf.hooks().into_iter().map(|h| h.spec.name).collect();
        assert_eq!(names, ["odd", "mark"]);
        // From position 2 on: frames 3, 5, 7 go.
        assert_eq!(cache.filter_batch(Direction::In, &ifp("x0"), &mut b, 2), 3);
        let kept: Vec<(u8, u8)> = b.iter().map(|m| (m.data()[0], m.data()[1])).collect();
        assert_eq!(
            kept,
            [(0, 0), (1, 1), (2, 0xee), (4, 0xee), (6, 0xee)],
            "order kept, earlier frames untouched, survivors modified"
        );
        // Another interface, or output: the odd hook does not apply.
        assert_eq!(cache.filter_batch(Direction::Out, &ifp("x0"), &mut b, 0), 0);
        assert_eq!(cache.filter_batch(Direction::In, &ifp("y0"), &mut b, 0), 0);
        let h = pf.hooks();
        assert_eq!((h[0].calls, h[0].drops), (6, 3));
        assert_eq!((h[1].calls, h[1].drops), (3 + 5 + 5, 0));
        // Removal takes effect at the next burst.
        assert!(pf.remove(odd));
        assert!(!pf.remove(odd));
        b.push(Mbuf::from_slice(&p, OwnerId::POOL, &[9; 60]).unwrap())
            .unwrap();
        assert_eq!(cache.filter_batch(Direction::In, &ifp("x0"), &mut b, 0), 0);
        assert_eq!(b.len(), 6);
        // Replace keeps the counters and the place.
        let calls = pf.hooks()[0].calls;
        assert!(pf.replace(
            mark,
            Arc::new(|_: Direction, _: &IfInfo, _: &mut Mbuf| Verdict::Drop)
        ));
        assert_eq!(cache.filter_batch(Direction::In, &ifp("x0"), &mut b, 0), 6);
        assert!(b.is_empty());
        let h = pf.hooks();
        assert_eq!((h[0].calls, h[0].drops), (calls + 6, 6));
        drop(b);
        assert_eq!(p.available(), 64, "dropped frames went back to the pool");
    }

    #[test]
    fn hooks_change_while_another_thread_filters() {
        let p = pool("pfil-race");
        let pf = Arc::new(Pfil::new());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = {
            let (pf, p, stop) = (pf.clone(), p.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut cache = pf.cache();
                let mut seen_drop = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let mut b = PacketBatch::new();
                    p.alloc_batch(OwnerId::POOL, &mut b, 16);
                    seen_drop += cache.filter_batch(Direction::Out, &ifp("z0"), &mut b, 0);
                }
                seen_drop
            })
        };
        for _ in 0..200 {
            let id = pf.add(
                HookSpec::new("all").output(),
                |_: Direction, _: &IfInfo, _: &mut Mbuf| Verdict::Drop,
            );
            std::thread::sleep(std::time::Duration::from_micros(200));
            pf.remove(id);
        }
        stop.store(true, Ordering::Relaxed);
        let dropped = worker.join().unwrap();
        assert!(dropped > 0, "the worker saw the hooks come and go");
        assert!(pf.hooks().is_empty());
        assert_eq!(p.available(), 64);
    }
}
