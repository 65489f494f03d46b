//! Unit tests of `Progress` (`engine/op.rs`): how an operation is split
//! into pieces and resumed after a partial completion.

use crate::mover::dsa::engine::op::{Inconsistent, Op, Progress};
use crate::mover::Hints;

fn h() -> Hints {
    Hints::default()
}

#[test]
fn pieces_cover_the_operation_in_order() {
    let op = Op::copy(0x10000, 0x90000, 10_000, h());
    let mut p = Progress::new(op, 4096);
    assert!(!p.descending);
    let mut seen = Vec::new();
    loop {
        seen.push(p.piece);
        if p.piece_done() {
            break;
        }
    }
    assert_eq!(seen, vec![(0, 4096), (4096, 8192), (8192, 10_000)]);
    // dst above an overlapping src: pieces from the end.
    let op = Op::copy(0x10100, 0x10000, 10_000, h());
    let mut p = Progress::new(op, 4096);
    assert!(p.descending);
    let mut seen = Vec::new();
    loop {
        seen.push(p.piece);
        if p.piece_done() {
            break;
        }
    }
    assert_eq!(seen, vec![(5904, 10_000), (1808, 5904), (0, 1808)]);
}

#[test]
fn sizes_above_32_bits_split_without_truncation() {
    let len = (5u64 << 32) + 3;
    let op = Op::fill(0x1000, 0, len as usize, h());
    let mut p = Progress::new(op, 1 << 31);
    let mut total = 0u64;
    let mut n = 0;
    loop {
        assert!(p.piece_len() <= 1 << 31);
        total += p.piece_len();
        n += 1;
        if p.piece_done() {
            break;
        }
    }
    assert_eq!((total, n), (len, 11));
}

#[test]
fn partial_completion_both_directions() {
    let op = Op::copy(0x20000, 0x10000, 1000, h());
    let mut p = Progress::new(op, 1 << 20);
    p.partial(300, false).unwrap();
    assert_eq!(p.piece, (300, 1000));
    assert_eq!(p.piece_op().dst, 0x20000 + 300);
    assert_eq!(p.piece_op().src, 0x10000 + 300);
    p.partial(200, true).unwrap();
    assert_eq!(p.piece, (300, 800));
    assert_eq!(p.piece_op().len, 500);
    assert_eq!(p.partial(501, false), Err(Inconsistent));
    p.partial(500, false).unwrap();
    assert!(p.is_done());
    assert_eq!(p.remainder().bytes(), 0);
    // Fill and flush never complete from the end.
    let mut f = Progress::new(Op::fill(0, 1, 10, h()), 64);
    assert_eq!(f.partial(1, true), Err(Inconsistent));
}

#[test]
fn remainder_is_piece_then_rest() {
    let op = Op::copy(0x10800, 0x10000, 0x3000, h());
    let mut p = Progress::new(op, 0x1000);
    p.piece_done();
    p.partial(0x100, true).unwrap();
    let r: Vec<Op> = p.remainder().ops().copied().collect();
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].src, r[0].dst, r[0].len), (0x11000, 0x11800, 0xf00));
    assert_eq!((r[1].src, r[1].dst, r[1].len), (0x10000, 0x10800, 0x1000));
    assert_eq!(p.remainder().bytes(), 0x1f00);
}
