//! Unit tests of the credit pool (`engine/op.rs`): the bound, stale
//! releases, and what tags name.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::mover::dsa::engine::op::{
    batch_gen, holder, tag_batch, tag_op, Credits, Holder, CLAIMED, MAX_BATCH_GEN, MAX_SEQ,
};

#[test]
fn never_more_than_capacity_and_stale_releases_fail() {
    let c = Credits::new(3);
    let t: Vec<u64> = (1..=4).map(|s| tag_op(7 * 64, s).unwrap()).collect();
    let a = c.try_acquire(t[0]).unwrap();
    let b = c.try_acquire(t[1]).unwrap();
    let d = c.try_acquire(t[2]).unwrap();
    assert_eq!(c.try_acquire(t[3]), None);
    assert_eq!(c.in_use(), 3);
    assert!(!c.release(a, t[1]), "wrong tag");
    assert!(c.release(a, t[0]));
    assert!(!c.release(a, t[0]), "double release");
    let e = c.try_acquire(t[3]).unwrap();
    assert_eq!(e, a);
    assert!(c.claim(b, t[1]));
    assert!(!c.release(b, t[1]), "claimed slots cannot be released");
    assert_eq!(c.tags().filter(|x| x.1 == CLAIMED).count(), 1);
    c.finish_claim(b);
    assert!(c.release(d, t[2]));
    assert!(c.release(e, t[3]));
    assert_eq!(c.in_use(), 0);
}

#[test]
fn tags_name_their_holder_and_are_never_free_or_claimed() {
    let addr = 0x7fff_ffff_ffc0usize;
    for seq in [1, 2, MAX_SEQ] {
        let t = tag_op(addr, seq).unwrap();
        assert!(t != 0 && t != CLAIMED);
        assert_eq!(holder(t), Holder::Op(addr));
    }
    assert_ne!(tag_op(addr, 1), tag_op(addr, 2));
    assert_eq!(tag_op(addr + 8, 1), None, "unaligned");
    assert_eq!(tag_op(1 << 48, 1), None, "above 2^48");
    for (b, gen) in [(0, 1), (5, 77), (u32::MAX - 1, MAX_BATCH_GEN)] {
        let t = tag_batch(b, gen);
        assert!(t != 0 && t != CLAIMED);
        assert_eq!(holder(t), Holder::Batch(b));
        assert_eq!(batch_gen(t), gen);
    }
}

#[test]
fn concurrent_acquire_release_keeps_the_bound() {
    let c = Arc::new(Credits::new(4));
    let held = Arc::new(AtomicU32::new(0));
    let max = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..4u32)
        .map(|th| {
            let (c, held, max) = (c.clone(), held.clone(), max.clone());
            std::thread::spawn(move || {
                let mut seq = 1;
                for _ in 0..20_000 {
                    let t = tag_op(64 * (th as usize + 1), seq).unwrap();
                    seq = seq % 1000 + 1;
                    if let Some(p) = c.try_acquire(t) {
                        let h = held.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(h, Ordering::SeqCst);
                        held.fetch_sub(1, Ordering::SeqCst);
                        assert!(c.release(p, t));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(max.load(Ordering::SeqCst) <= 4);
    assert_eq!(c.in_use(), 0);
}
