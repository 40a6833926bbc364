//! Syntax tree of a rule, with byte spans into the rule text for error messages.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Not,
    Neg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Or => "||",
            Self::And => "&&",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::In => "in",
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Rem => "%",
        }
    }
}

/// Byte range `start..end` in the rule text.
pub type Span = (usize, usize);

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Number(f64),
    Str(String),
    Bool(bool),
    Ident(String),
    List(Vec<Expr>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
    /// Levels of the tree below and including this node; the parser refuses a rule deeper
    /// than [`super::MAX_RULE_DEPTH`], so every recursive pass over a tree is bounded.
    pub depth: usize,
}

impl Expr {
    pub fn new(kind: ExprKind, span: Span) -> Self {
        let below = match &kind {
            ExprKind::Number(_) | ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Ident(_) => 0,
            ExprKind::List(items) => items.iter().map(|e| e.depth).max().unwrap_or(0),
            ExprKind::Unary(_, operand) => operand.depth,
            ExprKind::Binary(_, left, right) => left.depth.max(right.depth),
        };
        Self { kind, span, depth: below + 1 }
    }

    /// The operands of a top-level `a && b && c`, used to name the clause that excluded an offer.
    pub fn conjuncts(&self) -> Vec<&Expr> {
        match &self.kind {
            ExprKind::Binary(BinaryOp::And, left, right) => {
                let mut all = left.conjuncts();
                all.extend(right.conjuncts());
                all
            }
            _ => vec![self],
        }
    }
}
