//! The bookkeeping of how much of an operation ([`Op`]) is done:
//! splitting at the WQ's max transfer size, the order pieces
//! run in (descending for a memmove whose destination overlaps above its
//! source), and resuming after a partial completion (DSA.md 4.4).
//!
//! Invariant: what is left of an operation is always the current piece's
//! remaining bytes followed by `rest`, and running those two parts in that
//! order (on the device or the CPU) gives the same result as running the
//! whole operation.

pub use crate::mover::{Op, OpKind};

/// What is left of an operation, in the order it must run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remainder {
    parts: [Option<Op>; 2],
}

impl Remainder {
    pub fn empty() -> Remainder {
        Remainder {
            parts: [None, None],
        }
    }

    /// The parts, to be run one after the other.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.parts.iter().flatten()
    }

    /// Total bytes left.
    pub fn bytes(&self) -> u64 {
        self.ops().map(|o| o.len as u64).sum()
    }
}

/// A partial completion that does not fit the piece it reports on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inconsistent;

/// Progress of one operation through its pieces.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub op: Op,
    /// Pieces run from the end towards the start.
    pub descending: bool,
    /// Remaining bytes of the current piece, as offsets `[lo, hi)`.
    pub piece: (u64, u64),
    /// Bytes not started yet: above the piece when ascending, below it
    /// when descending.
    pub rest: (u64, u64),
    max_piece: u64,
}

impl Progress {
    /// Start an operation whose pieces are at most `max_piece` bytes.
    pub fn new(op: Op, max_piece: u64) -> Progress {
        let descending = op.overlaps() && op.dst > op.src;
        let mut p = Progress {
            op,
            descending,
            piece: (0, 0),
            rest: (0, op.len as u64),
            max_piece: max_piece.max(1),
        };
        p.next_piece();
        p
    }

    fn next_piece(&mut self) {
        let (lo, hi) = self.rest;
        let n = (hi - lo).min(self.max_piece);
        if self.descending {
            self.piece = (hi - n, hi);
            self.rest = (lo, hi - n);
        } else {
            self.piece = (lo, lo + n);
            self.rest = (lo + n, hi);
        }
    }

    /// Nothing is left.
    pub fn is_done(&self) -> bool {
        self.piece.0 == self.piece.1 && self.rest.0 == self.rest.1
    }

    /// The current piece's remaining bytes as an operation.
    pub fn piece_op(&self) -> Op {
        self.op.sub(self.piece.0, self.piece.1)
    }

    pub fn piece_len(&self) -> u64 {
        self.piece.1 - self.piece.0
    }

    /// The current piece completed: move to the next one. Returns whether
    /// the whole operation is done.
    pub fn piece_done(&mut self) -> bool {
        self.piece = (self.piece.1, self.piece.1);
        if self.rest.0 != self.rest.1 {
            self.next_piece();
        }
        self.is_done()
    }

    /// The device completed `bc` bytes of the current piece before a page
    /// fault, working from the piece's end when `from_end` (memmove result
    /// byte 1) and from its start otherwise.
    pub fn partial(&mut self, bc: u64, from_end: bool) -> Result<(), Inconsistent> {
        if bc > self.piece_len() || (from_end && !self.op.has_source()) {
            return Err(Inconsistent);
        }
        if from_end {
            self.piece.1 -= bc;
        } else {
            self.piece.0 += bc;
        }
        if self.piece_len() == 0 {
            self.piece_done();
        }
        Ok(())
    }

    /// Everything not yet confirmed done.
    pub fn remainder(&self) -> Remainder {
        let part = |(lo, hi): (u64, u64)| (lo != hi).then(|| self.op.sub(lo, hi));
        Remainder {
            parts: [part(self.piece), part(self.rest)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
