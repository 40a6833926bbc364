//! Columnar evaluation of a [`Program`] over a chunk of up to [`LANES`] rows: each node runs
//! one tight loop over the chunk, so there is no per-row interpretation and loops vectorise.

use super::program::{Node, NodeId, Program};

pub const LANES: usize = 256;

/// Per-thread buffers: one lane array per node, numbers and bools (0/1 bytes) apart.
pub struct ChunkScratch {
    nums: Vec<f32>,
    bools: Vec<u8>,
    slot: Vec<usize>,
}

impl ChunkScratch {
    pub fn new(program: &Program) -> Self {
        let (mut n_num, mut n_bool) = (0, 0);
        let slot = program
            .nodes()
            .iter()
            .map(|node| {
                let counter = if node.is_number() { &mut n_num } else { &mut n_bool };
                *counter += 1;
                *counter - 1
            })
            .collect();
        Self { nums: vec![0.0; n_num * LANES], bools: vec![0; n_bool * LANES], slot }
    }

    /// The 0/1 lanes of a bool node after [`eval_chunk`].
    pub fn truth(&self, id: NodeId) -> &[u8] {
        let s = self.slot[id as usize] * LANES;
        &self.bools[s..s + LANES]
    }
}

/// Read access to the lanes of earlier nodes while a later node's lanes are written.
struct Inputs<'a> {
    nums: &'a [f32],
    bools: &'a [u8],
    slot: &'a [usize],
}

impl Inputs<'_> {
    fn num(&self, id: NodeId) -> &[f32] {
        let s = self.slot[id as usize] * LANES;
        &self.nums[s..s + LANES]
    }

    fn truth(&self, id: NodeId) -> &[u8] {
        let s = self.slot[id as usize] * LANES;
        &self.bools[s..s + LANES]
    }
}

/// Evaluates all nodes over `n <= LANES` rows of `dim` features laid out row-major in `rows`.
pub fn eval_chunk(program: &Program, rows: &[f32], dim: usize, n: usize, scratch: &mut ChunkScratch) {
    debug_assert!(n <= LANES && rows.len() >= n * dim);
    let ChunkScratch { nums, bools, slot } = scratch;
    for (index, node) in program.nodes().iter().enumerate() {
        // Nodes only read earlier nodes, whose lanes sit below this one's in its pool.
        let at = slot[index] * LANES;
        if node.is_number() {
            let (earlier, rest) = nums.split_at_mut(at);
            let inputs = Inputs { nums: earlier, bools, slot };
            eval_number(node, rows, dim, n, &inputs, (&mut rest[..LANES]).try_into().expect("LANES lanes"));
        } else {
            let (earlier, rest) = bools.split_at_mut(at);
            let inputs = Inputs { nums, bools: earlier, slot };
            eval_bool(node, &inputs, (&mut rest[..LANES]).try_into().expect("LANES lanes"));
        }
    }
}

fn eval_number(node: &Node, rows: &[f32], dim: usize, n: usize, s: &Inputs<'_>, out: &mut [f32; LANES]) {
    match node {
        Node::Feature(col) => {
            for (o, row) in out.iter_mut().zip(rows.chunks_exact(dim).take(n)) {
                *o = row[*col as usize];
            }
        }
        Node::Const(c) => out.fill(c.get()),
        Node::Neg(a) => out.iter_mut().zip(s.num(*a)).for_each(|(o, x)| *o = -x),
        Node::Arith(op, a, b) => {
            let op = *op;
            for ((o, x), y) in out.iter_mut().zip(s.num(*a)).zip(s.num(*b)) {
                *o = op.apply(*x, *y);
            }
        }
        _ => unreachable!("not a number node"),
    }
}

fn eval_bool(node: &Node, s: &Inputs<'_>, out: &mut [u8; LANES]) {
    let zip2 = |out: &mut [u8; LANES], a: &[u8], b: &[u8], f: fn(u8, u8) -> u8| {
        for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
            *o = f(*x, *y);
        }
    };
    match node {
        Node::BoolConst(b) => out.fill(u8::from(*b)),
        Node::Truth(a) => out.iter_mut().zip(s.num(*a)).for_each(|(o, x)| *o = u8::from(*x != 0.0)),
        Node::Cmp(op, a, b) => {
            let op = *op;
            for ((o, x), y) in out.iter_mut().zip(s.num(*a)).zip(s.num(*b)) {
                *o = u8::from(op.apply(*x, *y));
            }
        }
        Node::CmpConst(op, a, c) => compare_const(*op, s.num(*a), c.get(), out),
        Node::InSet(a, set) => {
            out.fill(0);
            for c in set {
                let c = c.get();
                out.iter_mut().zip(s.num(*a)).for_each(|(o, x)| *o |= u8::from(*x == c));
            }
        }
        Node::Not(a) => out.iter_mut().zip(s.truth(*a)).for_each(|(o, x)| *o = x ^ 1),
        Node::And(a, b) => zip2(out, s.truth(*a), s.truth(*b), |x, y| x & y),
        Node::Or(a, b) => zip2(out, s.truth(*a), s.truth(*b), |x, y| x | y),
        Node::Xor(a, b) => zip2(out, s.truth(*a), s.truth(*b), |x, y| x ^ y),
        _ => unreachable!("not a bool node"),
    }
}

/// One monomorphic loop per operator so the compiler vectorises each.
fn compare_const(op: super::program::CmpOp, xs: &[f32], c: f32, out: &mut [u8; LANES]) {
    use super::program::CmpOp::{Eq, Ge, Gt, Le, Lt, Ne};
    let it = out.iter_mut().zip(xs);
    match op {
        Eq => it.for_each(|(o, x)| *o = u8::from(*x == c)),
        Ne => it.for_each(|(o, x)| *o = u8::from(*x != c)),
        Lt => it.for_each(|(o, x)| *o = u8::from(*x < c)),
        Le => it.for_each(|(o, x)| *o = u8::from(*x <= c)),
        Gt => it.for_each(|(o, x)| *o = u8::from(*x > c)),
        Ge => it.for_each(|(o, x)| *o = u8::from(*x >= c)),
    }
}
