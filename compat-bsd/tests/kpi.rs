//! The Rust half of the KPI, called as C would call it: mbuf operations
//! over chains, kmutex under contention, callouts through the timerfd,
//! Ethernet CRCs, and the no-leak rule of the per-entry buffer cache.

use std::ffi::c_void;
use std::sync::Arc;

use pktkit_bsd::ctx::Entered;
use pktkit_bsd::{kern, mbuf, sys};
use pktkit_native::sys::{mbuf as Mb, MT_DATA};
use pktkit_native::{Mbuf, OwnerId, Pool};

mod support;
use support::device as setup;

/// A chain of `parts` buffers holding 0, 1, 2, ... as bytes.
fn chain(pool: &Pool, owner: OwnerId, parts: &[usize]) -> *mut Mb {
    let total: usize = parts.iter().sum();
    let bytes: Vec<u8> = (0..total).map(|i| i as u8).collect();
    let head = Mbuf::from_slice(pool, owner, &bytes[..parts[0]]).expect("buf");
    // Re-split into the requested parts by chaining fresh buffers.
    let mut off = parts[0];
    let mut tail = head.as_ptr();
    for &p in &parts[1..] {
        let seg = Mbuf::from_slice(pool, owner, &bytes[off..off + p]).expect("buf");
        let raw = seg.into_raw();
        // SAFETY: raw and tail are buffers of the chain we build and own.
        unsafe {
            (*raw).m_hdr.mh_flags &= !pktkit_native::sys::M_PKTHDR;
            (*tail).m_hdr.mh_next = raw;
            (*head.as_ptr()).M_pkthdr.len += p as i32;
        }
        tail = raw;
        off += p;
    }
    head.into_raw()
}

fn contents(m: *mut Mb) -> Vec<u8> {
    // SAFETY: m is a live chain; m_length and m_copydata stay inside it.
    unsafe {
        let n = mbuf::m_length(m);
        let mut v = vec![0u8; n as usize];
        mbuf::m_copydata(m, 0, n, v.as_mut_ptr().cast());
        v
    }
}

#[test]
fn m_adj_trims_front_and_back_across_buffers() {
    let (pool, owner, ctx) = setup("kpi-adj");
    let m = chain(&pool, owner, &[10, 20, 30]);
    // SAFETY: m is ours.
    unsafe {
        mbuf::m_adj(m, 15);
        assert_eq!(contents(m), (15..60).map(|i| i as u8).collect::<Vec<_>>());
        mbuf::m_adj(m, -35);
        assert_eq!(contents(m), (15..25).map(|i| i as u8).collect::<Vec<_>>());
        assert_eq!((*m).M_pkthdr.len, 10);
        mbuf::m_adj(m, -100);
        assert_eq!(mbuf::m_length(m), 0);
        mbuf::m_freem(m);
    }
    drop(ctx);
    assert_eq!(pool.held_by(owner), 0);
}

#[test]
fn m_pullup_defrag_prepend_keep_the_bytes() {
    let (pool, owner, ctx) = setup("kpi-pull");
    let want: Vec<u8> = (0..60).map(|i| i as u8).collect();
    let _e = Entered::new(&ctx);
    // SAFETY: every chain is ours and used once.
    unsafe {
        let m = mbuf::m_pullup(chain(&pool, owner, &[4, 20, 36]), 30);
        assert!(!m.is_null());
        assert!((*m).m_hdr.mh_len >= 30);
        assert_eq!(contents(m), want);

        let d = mbuf::m_defrag(m, 0);
        assert!(!d.is_null() && (*d).m_hdr.mh_next.is_null());
        assert_eq!(contents(d), want);

        let p = mbuf::m_prepend(d, 8, 0);
        assert_eq!(mbuf::m_length(p), 68);
        assert_eq!(&contents(p)[8..], &want[..]);
        mbuf::m_freem(p);

        // A pullup larger than the chain fails and frees it (as NetBSD's).
        let short = chain(&pool, owner, &[4, 4]);
        assert!(mbuf::m_pullup(short, 100).is_null());

        // m_copyback grows the last buffer within its room.
        let g = mbuf::m_gethdr(0, MT_DATA as i32);
        assert!(!g.is_null());
        mbuf::m_copyback(g, 0, 5, b"hello".as_ptr().cast());
        assert_eq!(contents(g), b"hello");
        mbuf::m_freem(g);
    }
    drop(_e);
    assert_eq!(pool.held_by(owner), 0, "the entry's cache was emptied");
}

#[test]
fn allocation_outside_an_entry_fails_cleanly() {
    assert!(mbuf::m_gethdr(0, MT_DATA as i32).is_null());
}

#[test]
fn kmutex_excludes_across_threads() {
    let m = kern::mutex_obj_alloc(0, 0) as usize;
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = counter.clone();
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    // SAFETY: m is a live kmutex; the counter update under it
                    // is a non-atomic read-modify-write on purpose.
                    unsafe {
                        kern::mutex_enter(m as *mut sys::kmutex);
                        assert_eq!(kern::mutex_owned(m as *const sys::kmutex), 1);
                        let v = c.load(std::sync::atomic::Ordering::Relaxed);
                        c.store(v + 1, std::sync::atomic::Ordering::Relaxed);
                        kern::mutex_exit(m as *mut sys::kmutex);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), 80_000);
    // SAFETY: no thread holds it any more.
    unsafe {
        assert_eq!(kern::mutex_owned(m as *const sys::kmutex), 0);
        kern::mutex_obj_free(m as *mut sys::kmutex);
    }
}

static FIRED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

unsafe extern "C" fn bump(_arg: *mut c_void) {
    FIRED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[test]
fn callouts_fire_once_when_due_and_not_when_stopped() {
    let (_pool, _owner, ctx) = setup("kpi-callout");
    let mut a = sys::callout::default();
    let mut b = sys::callout::default();
    {
        let _e = Entered::new(&ctx);
        // SAFETY: a and b live until the end of the test.
        unsafe {
            kern::callout_init(&mut a, 0);
            kern::callout_init(&mut b, 0);
            kern::callout_reset(&mut a, 1, Some(bump), std::ptr::null_mut());
            kern::callout_reset(&mut b, 1, Some(bump), std::ptr::null_mut());
            assert!(kern::callout_pending(&mut b));
            kern::callout_stop(&mut b);
        }
    }
    assert_eq!(kern::run_callouts(&ctx), 0, "not due yet");
    std::thread::sleep(std::time::Duration::from_millis(30));
    assert_eq!(kern::run_callouts(&ctx), 1);
    assert_eq!(FIRED.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(kern::run_callouts(&ctx), 0, "a callout fires once");
    // SAFETY: a is initialised.
    unsafe {
        assert!(kern::callout_expired(&mut a));
        kern::callout_destroy(&mut a);
        kern::callout_destroy(&mut b);
    }
}

#[test]
fn ether_crcs_match_the_standard() {
    // CRC-32 (IEEE 802.3) of "123456789" is 0xcbf43926 after the final
    // complement, which NetBSD's ether_crc32_le leaves out.
    // SAFETY: reads 9 bytes of a static string.
    let le = unsafe { sys::ether_crc32_le(b"123456789".as_ptr(), 9) };
    assert_eq!(le, !0xcbf4_3926);
    // The big-endian form is the same register, bit-reversed.
    // SAFETY: as above.
    let be = unsafe { sys::ether_crc32_be(b"123456789".as_ptr(), 9) };
    assert_eq!(be, le.reverse_bits());
}
