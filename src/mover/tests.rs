//! Tests of the decoded operation and of the record pool.

use super::*;
use crate::abi::{
    vdm_operation, vdm_operation_args, vdm_operation_data_memcpy, vdm_operation_type,
};
use crate::ffi::view::decode;
use core::ptr::NonNull;
use std::sync::atomic::AtomicUsize;

fn dec(o: vdm_operation) -> Result<Op, BadOp> {
    let mut o = o;
    // SAFETY: a local operation, valid for reads.
    unsafe { decode(NonNull::new(core::ptr::addr_of_mut!(o)).unwrap()) }
}

fn copy_op(dst: *mut u8, src: *const u8, n: usize) -> vdm_operation {
    vdm_operation {
        data: vdm_operation_args {
            memcpy: vdm_operation_data_memcpy {
                dest: dst.cast(),
                src: src.cast_mut().cast(),
                n,
                flags: F_MEM_DURABLE | 1 << 40,
            },
        },
        r#type: vdm_operation_type::VDM_OPERATION_MEMCPY,
        padding: 0,
    }
}

#[test]
fn decodes_destination_first() {
    let src = [1u8; 8];
    let mut dst = [0u8; 8];
    let op = dec(copy_op(dst.as_mut_ptr(), src.as_ptr(), 8)).unwrap();
    assert_eq!(op.kind, OpKind::Copy);
    assert_eq!(op.dst, dst.as_ptr() as usize);
    assert_eq!(op.src, src.as_ptr() as usize);
    assert_eq!(op.len, 8);
    assert_eq!(op.flags, F_MEM_DURABLE | 1 << 40, "raw flags kept");
    assert_eq!(
        op.hints,
        Hints {
            durable: true,
            no_cache: false
        }
    );
}

#[test]
fn refuses_null_and_wrapping_ranges() {
    let mut dst = [0u8; 4];
    let null = dec(copy_op(dst.as_mut_ptr(), core::ptr::null(), 4));
    assert_eq!(null.unwrap_err(), BadOp::NullPointer);
    let wrap = dec(copy_op(dst.as_mut_ptr(), usize::MAX as *const u8, 4));
    assert_eq!(wrap.unwrap_err(), BadOp::RangeWraps);
    assert!(dec(copy_op(core::ptr::null_mut(), core::ptr::null(), 0)).is_ok());
    let mut bad = copy_op(dst.as_mut_ptr(), dst.as_ptr(), 4);
    let p = core::ptr::addr_of_mut!(bad);
    // SAFETY: writing an out-of-range value through a u32 view, as C
    // may; the operation is only read through `p` afterwards.
    let r = unsafe {
        core::ptr::addr_of_mut!((*p).r#type).cast::<u32>().write(9);
        decode(NonNull::new(p).unwrap())
    };
    assert_eq!(r.unwrap_err(), BadOp::UnknownType);
}

#[test]
fn fill_pattern_rotates_with_the_offset() {
    let pat = u64::from_le_bytes([0, 1, 2, 3, 4, 5, 6, 7]);
    let op = Op::fill_pattern(0x1000, pat, 100, Hints::default());
    for lo in 0..20u64 {
        let b = op.sub(lo, 100).pattern.to_le_bytes();
        for (i, &x) in b.iter().enumerate() {
            assert_eq!(u64::from(x), (lo + i as u64) % 8);
        }
    }
}

#[test]
fn overlap_and_range_checks() {
    let h = Hints::default();
    assert!(Op::copy(10, 0, 11, h).overlaps());
    assert!(Op::moving(10, 0, 11, h).overlaps());
    assert!(!Op::copy(10, 0, 10, h).overlaps());
    assert!(Op::copy(0, 10, 11, h).overlaps());
    assert!(Op::copy(5, 5, 1, h).overlaps());
    assert!(!Op::fill(0, 0, 100, h).overlaps());
    assert!(!Op::copy(usize::MAX - 1, 0, 4, h).in_range());
    assert!(Op::copy(0x1000, 0x2000, 4, h).in_range());
}

#[derive(Default)]
struct Rec {
    v: AtomicUsize,
}

#[test]
fn bounded_and_reusable_in_any_order() {
    let pool: Pool<Rec> = Pool::new(600);
    let mut held: Vec<&Rec> = (0..600).map(|_| pool.alloc().unwrap()).collect();
    assert!(pool.alloc().is_none(), "the 601st record must be refused");
    assert_eq!(pool.outstanding(), 600);
    // Free from the middle, not in allocation order.
    let r = held.remove(300);
    // SAFETY: `r` came from this pool and is not used again.
    unsafe { pool.free(r) };
    let again = pool.alloc().expect("a freed record is reusable");
    assert!(pool.alloc().is_none());
    held.push(again);
    let addrs: std::collections::HashSet<usize> =
        held.iter().map(|r| *r as *const Rec as usize).collect();
    assert_eq!(addrs.len(), 600, "no record handed out twice");
    for r in held {
        // SAFETY: each record came from this pool once.
        unsafe { pool.free(r) };
    }
    assert_eq!(pool.outstanding(), 0);
}

#[test]
fn records_move_between_owner_and_other_threads() {
    let pool: Pool<Rec> = Pool::new(8);
    // Allocated by the owner, freed elsewhere, reused by the owner.
    let held: Vec<usize> = (0..8)
        .map(|_| pool.alloc().unwrap() as *const Rec as usize)
        .collect();
    assert!(pool.alloc().is_none());
    std::thread::scope(|s| {
        s.spawn(|| {
            for &a in &held[..4] {
                // SAFETY: each address is a record of `pool`, freed once.
                unsafe { pool.free(&*(a as *const Rec)) };
            }
            assert_eq!(pool.outstanding(), 4);
            let r = pool.alloc().expect("freed by this thread, reusable here");
            // SAFETY: `r` came from this pool.
            unsafe { pool.free(r) };
        });
    });
    for &a in &held[4..] {
        // SAFETY: as above.
        unsafe { pool.free(&*(a as *const Rec)) };
    }
    assert_eq!(pool.outstanding(), 0);
    let again: Vec<&Rec> = (0..8)
        .map(|_| pool.alloc().expect("all 8 reusable"))
        .collect();
    assert!(pool.alloc().is_none());
    assert_eq!(again.len(), 8);
}

#[test]
fn concurrent_alloc_free_never_shares_a_record() {
    let pool: Pool<Rec> = Pool::new(64);
    // Miri interprets every step: fewer rounds still interleave threads.
    let rounds = if cfg!(miri) { 500 } else { 20_000 };
    std::thread::scope(|s| {
        for t in 0..4usize {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..rounds {
                    if let Some(r) = pool.alloc() {
                        let tag = t * 1_000_000 + i + 1;
                        r.v.store(tag, Ordering::Relaxed);
                        std::hint::spin_loop();
                        assert_eq!(r.v.load(Ordering::Relaxed), tag, "record shared");
                        // SAFETY: `r` came from this pool.
                        unsafe { pool.free(r) };
                    }
                }
            });
        }
    });
    assert_eq!(pool.outstanding(), 0);
}
