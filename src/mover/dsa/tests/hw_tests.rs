//! Unit tests of the hardware formats in `hw/mod.rs`: descriptor
//! builders, flag policy and constants, then completion records and
//! status codes. (The values against `linux/idxd.h`: `idxd_h.rs`.)

use crate::mover::dsa::hw::{
    data_flags, flag, flush_flags, gencap, opcode, status, CompletionRecord, CrCell, Descriptor,
    Hints,
};

// Descriptors.

#[test]
fn builders_set_opcode_operands_and_flags() {
    let d = Descriptor::memmove(0x2000, 0x1000, 4096, 0x3000, flag::ALWAYS | flag::CC);
    assert_eq!(d.opcode(), opcode::MEMMOVE);
    assert_eq!(d.flags(), 0x10c);
    assert_eq!(
        (d.src, d.dst, d.xfer_size, d.completion_addr),
        (0x1000, 0x2000, 4096, 0x3000)
    );
    assert_eq!(d.as_bytes()[7], 0x03);
    assert_eq!(&d.as_bytes()[4..7], &[0x0c, 0x01, 0x00]);

    let f = Descriptor::memfill(0x2000, 0xabab_abab_abab_abab, 10, 0x40, flag::ALWAYS);
    assert_eq!(
        (f.opcode(), f.src, f.dst, f.xfer_size),
        (opcode::MEMFILL, 0xabab_abab_abab_abab, 0x2000, 10)
    );

    let c = Descriptor::cflush(0x5000, 64, 0x40, flag::ALWAYS);
    assert_eq!(
        (c.opcode(), c.src, c.dst, c.xfer_size),
        (opcode::CFLUSH, 0, 0x5000, 64)
    );

    let b = Descriptor::batch(0x8000, 5, 0x60);
    assert_eq!(
        (b.opcode(), b.src, b.xfer_size, b.flags()),
        (opcode::BATCH, 0x8000, 5, 0xc)
    );
    assert_eq!(Descriptor::noop(0x20).opcode(), opcode::NOOP);
    assert_eq!(Descriptor::drain(0x20).opcode(), opcode::DRAIN);
    assert_eq!(Descriptor::drain(0x20).flags(), flag::CRAV | flag::RCR);
    for d in [d, f, c, b] {
        assert_eq!(d.pasid_priv, 0, "user descriptors carry PASID 0 and priv 0");
        assert_eq!(d.rsvd, 0);
        assert_eq!(d.op_specific, [0; 24]);
        assert_eq!(Descriptor::from_bytes(d.as_bytes()), d);
    }
}

#[test]
fn flag_policy_follows_gencap() {
    let all = gencap::CACHE_CONTROL_MEM | gencap::CACHE_CONTROL_CFLUSH | gencap::DEST_READBACK;
    let h = |no_cache, durable| Hints { no_cache, durable };
    assert_eq!(
        data_flags(all, h(false, false)),
        flag::CRAV | flag::RCR | flag::CC
    );
    assert_eq!(data_flags(all, h(true, false)), flag::CRAV | flag::RCR);
    // Durable: readback, and never cache control (it would keep the data
    // in the LLC, outside the persistence domain).
    assert_eq!(
        data_flags(all, h(false, true)),
        flag::CRAV | flag::RCR | flag::DRDBK
    );
    assert_eq!(
        data_flags(all, h(true, true)),
        flag::CRAV | flag::RCR | flag::DRDBK
    );
    // No readback capability: durability is left to the CPU, bit 15 is
    // never used as a substitute.
    assert_eq!(
        data_flags(gencap::CACHE_CONTROL_MEM, h(false, true)),
        flag::CRAV | flag::RCR
    );
    assert_eq!(data_flags(0, h(false, true)), flag::CRAV | flag::RCR);
    for g in [0, all, u64::MAX] {
        for nc in [false, true] {
            for du in [false, true] {
                assert_eq!(data_flags(g, h(nc, du)) & flag::DSTS, 0);
                assert_eq!(data_flags(g, h(nc, du)) & flag::ALWAYS, flag::ALWAYS);
            }
        }
    }
    assert_eq!(flush_flags(all, h(false, false)), flag::ALWAYS | flag::CC);
    assert_eq!(flush_flags(all, h(true, false)), flag::ALWAYS);
    assert_eq!(
        flush_flags(gencap::CACHE_CONTROL_MEM, h(false, false)),
        flag::ALWAYS
    );
    // The two Sapphire Rapids values differ in bit 3 only.
    assert_eq!(flush_flags(0x40_915f_0107, h(false, true)), flag::ALWAYS);
    assert_eq!(
        flush_flags(0x40_915f_010f, h(false, true)),
        flag::ALWAYS | flag::CC
    );
    for g in [0x40_915f_0107u64, 0x40_915f_010f] {
        assert_eq!(flush_flags(g, h(false, true)) & flag::DRDBK, 0);
        assert_eq!(data_flags(g, h(false, true)), flag::ALWAYS | flag::DRDBK);
        assert_eq!(data_flags(g, h(false, false)), flag::ALWAYS | flag::CC);
    }
}

#[test]
fn gencap_decoding_matches_the_spr_example() {
    // DSA.md 1.2: gen_cap 0x40915f0107 -> 2 GiB transfers, 1024 per batch.
    let g = 0x40_915f_0107u64;
    assert_eq!(gencap::max_transfer_size(g), 1 << 31);
    assert_eq!(gencap::max_batch_size(g), 1024);
    assert_ne!(g & gencap::BLOCK_ON_FAULT, 0);
    assert_ne!(g & gencap::OVERLAP_COPY, 0);
    assert_ne!(g & gencap::CACHE_CONTROL_MEM, 0);
    assert_ne!(g & gencap::DEST_READBACK, 0);
}

#[test]
fn flag_and_opcode_values_match_dsa_md() {
    assert_eq!(
        [
            flag::FENCE,
            flag::BOF,
            flag::CRAV,
            flag::RCR,
            flag::RCI,
            flag::CRSTS,
            flag::CHECK_RESULT,
            flag::CC
        ],
        [0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x80, 0x100]
    );
    assert_eq!(
        [
            flag::ADDR1_TCS,
            flag::ADDR2_TCS,
            flag::ADDR3_TCS,
            flag::CR_TCS,
            flag::STORD,
            flag::DRDBK,
            flag::DSTS
        ],
        [0x200, 0x400, 0x800, 0x1000, 0x2000, 0x4000, 0x8000]
    );
    assert_eq!(
        [
            opcode::NOOP,
            opcode::BATCH,
            opcode::DRAIN,
            opcode::MEMMOVE,
            opcode::MEMFILL,
            opcode::CFLUSH
        ],
        [0, 1, 2, 3, 4, 0x20]
    );
}

// Completion records.

#[test]
fn completion_records_own_their_cache_line() {
    use crate::mover::dsa::engine::batch::BatchRec;
    use crate::mover::dsa::engine::DeviceOp;
    use crate::mover::dsa::hw::CrLine;
    // The record the device writes, 32-byte aligned, alone in 64 bytes
    // (DeviceOp's and BatchRec's field offsets are pinned at compile time
    // next to their definitions).
    assert_eq!(core::mem::size_of::<CrLine>(), 64);
    assert_eq!(core::mem::align_of::<CrLine>(), 64);
    let line = CrLine::default();
    assert_eq!(line.addr(), &line as *const CrLine as u64);
    let op = Box::new(DeviceOp::default());
    let start = &*op as *const DeviceOp as u64;
    assert_eq!(start % 64, 0);
    assert!(
        core::mem::size_of::<DeviceOp>() > 64,
        "bookkeeping after the line"
    );
    let b = Box::new(BatchRec::default());
    assert_eq!(b.cr.addr() % 64, 0);
    assert_eq!(
        b.cr.addr() - b.list_addr(),
        64 * 64,
        "the record follows the list"
    );
    assert!(core::ptr::from_ref(&b.state) as u64 >= b.cr.addr() + 64);
}

#[test]
fn publish_and_snapshot_round_trip() {
    let c = CrCell::default();
    assert_eq!(c.status(), 0);
    let mut r = CompletionRecord {
        status: status::PAGE_FAULT_NOBOF | status::WRITE_FAULT,
        result: 1,
        bytes_completed: 12345,
        fault_addr: 0xdead_b000,
        ..Default::default()
    };
    r.op_specific[0..3].copy_from_slice(&[0x40, 0x02, 0x01]);
    c.publish(&r);
    assert_eq!(c.status(), 0x83);
    let s = c.snapshot();
    assert_eq!(s, r);
    assert_eq!(s.code(), status::PAGE_FAULT_NOBOF);
    assert!(s.write_fault());
    assert_eq!(s.invalid_flags(), 0x01_0240);
    // SAFETY: `c` is a live, aligned CrCell for this scope.
    assert_ne!(unsafe { *c.monitor_word() }, 0);
    c.clear();
    assert_eq!(c.snapshot(), CompletionRecord::default());
    // SAFETY: as above.
    assert_eq!(unsafe { *c.monitor_word() }, 0);
    // SAFETY: `c.addr()` is the address of the live CrCell `c`.
    let same = unsafe { CrCell::at(c.addr()) };
    same.set_status(status::SUCCESS);
    assert_eq!(c.status(), 1);
    assert!(!c.replace_status(0, status::SW_NOT_EXECUTED));
    assert!(c.replace_status(1, 0));
}

#[test]
fn validation_errors_are_the_pre_execution_codes() {
    for c in 0u8..=0x7f {
        let v = status::is_validation_error(c);
        let expect = (0x10..=0x1e).contains(&c) && c != 0x1a;
        assert_eq!(v, expect, "code {c:#x}");
    }
    assert!(!status::is_validation_error(status::HW_ERR1));
}

#[test]
fn software_statuses_are_unused_hardware_codes() {
    for s in [status::SW_PENDING, status::SW_NOT_EXECUTED] {
        assert!(s & status::WRITE_FAULT == 0);
        assert!(s > status::BATCH_EVL_ERR);
    }
}
