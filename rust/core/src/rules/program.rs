//! The compiled plan: a DAG of typed nodes shared by all rules of a catalog (common
//! sub-expressions are built once), evaluated over one vector or over columns of a batch.

use std::collections::HashMap;

pub type NodeId = u32;

/// An `f32` kept by its bits so nodes can be hashed for sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bits(u32);

impl Bits {
    pub fn new(value: f32) -> Self {
        Self(value.to_bits())
    }
    pub fn get(self) -> f32 {
        f32::from_bits(self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    #[inline(always)]
    pub fn apply(self, a: f32, b: f32) -> bool {
        match self {
            Self::Eq => a == b,
            Self::Ne => a != b,
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
        }
    }

    /// The same comparison with its operands swapped (`3 < x` is `x > 3`).
    pub fn flipped(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::Le => Self::Ge,
            Self::Gt => Self::Lt,
            Self::Ge => Self::Le,
            same => same,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl ArithOp {
    #[inline(always)]
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Self::Add => a + b,
            Self::Sub => a - b,
            Self::Mul => a * b,
            Self::Div => a / b,
            Self::Rem => a % b,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    // Numbers.
    Feature(u32),
    Const(Bits),
    Neg(NodeId),
    Arith(ArithOp, NodeId, NodeId),
    // Bools.
    BoolConst(bool),
    /// A bool feature: true when the stored value is not 0.
    Truth(NodeId),
    Cmp(CmpOp, NodeId, NodeId),
    CmpConst(CmpOp, NodeId, Bits),
    InSet(NodeId, Vec<Bits>),
    Not(NodeId),
    And(NodeId, NodeId),
    Or(NodeId, NodeId),
    Xor(NodeId, NodeId),
}

impl Node {
    pub fn is_number(&self) -> bool {
        matches!(self, Self::Feature(_) | Self::Const(_) | Self::Neg(_) | Self::Arith(..))
    }
}

/// Nodes in topological order (a node only refers to earlier ones).
#[derive(Debug, Clone, Default)]
pub struct Program {
    nodes: Vec<Node>,
    shared: HashMap<Node, NodeId>,
}

impl Program {
    /// Adds a node, or returns the id of the identical node already there.
    pub fn add(&mut self, node: Node) -> NodeId {
        if let Some(&id) = self.shared.get(&node) {
            return id;
        }
        let id = NodeId::try_from(self.nodes.len()).expect("fewer than 2^32 rule nodes");
        self.nodes.push(node.clone());
        self.shared.insert(node, id);
        id
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Evaluates every node over one feature vector; bools come out as 0.0 / 1.0.
    pub fn eval_row(&self, row: &[f32], values: &mut Vec<f32>) {
        values.clear();
        values.reserve(self.nodes.len());
        for node in &self.nodes {
            let v = |id: &NodeId| values[*id as usize];
            let truth = |id: &NodeId| values[*id as usize] != 0.0;
            let value = match node {
                Node::Feature(col) => row[*col as usize],
                Node::Const(c) => c.get(),
                Node::Neg(a) => -v(a),
                Node::Arith(op, a, b) => op.apply(v(a), v(b)),
                Node::BoolConst(b) => f32::from(u8::from(*b)),
                Node::Truth(a) => f32::from(u8::from(truth(a))),
                Node::Cmp(op, a, b) => f32::from(u8::from(op.apply(v(a), v(b)))),
                Node::CmpConst(op, a, c) => f32::from(u8::from(op.apply(v(a), c.get()))),
                Node::InSet(a, set) => {
                    let x = v(a);
                    f32::from(u8::from(set.iter().any(|c| c.get() == x)))
                }
                Node::Not(a) => f32::from(u8::from(!truth(a))),
                Node::And(a, b) => f32::from(u8::from(truth(a) && truth(b))),
                Node::Or(a, b) => f32::from(u8::from(truth(a) || truth(b))),
                Node::Xor(a, b) => f32::from(u8::from(truth(a) != truth(b))),
            };
            values.push(value);
        }
    }
}
