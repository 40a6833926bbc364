//! Type-checks a rule's syntax tree against the feature schema and adds it to a shared
//! [`Program`]. Every mistake is found here, at load time, with its position in the rule.

use super::ast::{BinaryOp, Expr, ExprKind, Span, UnaryOp};
use super::program::{ArithOp, Bits, CmpOp, Node, NodeId, Program};
use crate::schema::{FeatureKind, Schema};

/// A type error: the byte span it concerns and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    pub span: Span,
    pub detail: String,
}

/// What a sub-expression turned out to be.
enum Typed {
    Number(NodeId),
    Bool(NodeId),
    /// A category feature (by schema index) and the node holding its code.
    Category(usize, NodeId),
    Str(String),
}

impl Typed {
    fn describe(&self, schema: &Schema) -> String {
        match self {
            Self::Number(_) => "a number".to_owned(),
            Self::Bool(_) => "a bool".to_owned(),
            Self::Category(f, _) => format!("category '{}'", schema.features()[*f].name),
            Self::Str(s) => format!("the string '{s}'"),
        }
    }
}

pub struct Compiler<'a> {
    pub schema: &'a Schema,
    pub program: &'a mut Program,
}

type Checked<T> = Result<T, TypeError>;

fn err<T>(span: Span, detail: impl Into<String>) -> Checked<T> {
    Err(TypeError { span, detail: detail.into() })
}

impl Compiler<'_> {
    /// Compiles a whole rule, which must be a bool.
    pub fn compile_rule(&mut self, expr: &Expr) -> Checked<NodeId> {
        match self.typed(expr)? {
            Typed::Bool(id) => Ok(id),
            other => {
                err(expr.span, format!("a rule must be true or false, but this is {}", other.describe(self.schema)))
            }
        }
    }

    fn number(&mut self, value: f64) -> NodeId {
        self.program.add(Node::Const(Bits::new(value as f32)))
    }

    fn constant(&self, id: NodeId) -> Option<f32> {
        match self.program.node(id) {
            Node::Const(c) => Some(c.get()),
            _ => None,
        }
    }

    fn typed(&mut self, expr: &Expr) -> Checked<Typed> {
        Ok(match &expr.kind {
            ExprKind::Number(n) => Typed::Number(self.number(*n)),
            ExprKind::Str(s) => Typed::Str(s.clone()),
            ExprKind::Bool(b) => Typed::Bool(self.program.add(Node::BoolConst(*b))),
            ExprKind::Ident(name) => self.feature(name, expr.span)?,
            ExprKind::List(_) => return err(expr.span, "a list may only follow 'in'"),
            ExprKind::Unary(op, operand) => self.unary(*op, operand)?,
            ExprKind::Binary(op, left, right) => self.binary(*op, left, right, expr.span)?,
        })
    }

    fn feature(&mut self, name: &str, span: Span) -> Checked<Typed> {
        let Some(index) = self.schema.index_of(name) else {
            let hint = closest(name, self.schema.features().iter().map(|f| f.name.as_str()))
                .map(|c| format!("; did you mean '{c}'?"))
                .unwrap_or_default();
            return err(span, format!("unknown feature '{name}'{hint}"));
        };
        let load = self.program.add(Node::Feature(index as u32));
        Ok(match self.schema.features()[index].kind {
            FeatureKind::Float | FeatureKind::Int => Typed::Number(load),
            FeatureKind::Bool => Typed::Bool(self.program.add(Node::Truth(load))),
            FeatureKind::Category(_) => Typed::Category(index, load),
        })
    }

    fn unary(&mut self, op: UnaryOp, operand: &Expr) -> Checked<Typed> {
        match (op, self.typed(operand)?) {
            (UnaryOp::Not, Typed::Bool(id)) => Ok(Typed::Bool(self.not(id))),
            (UnaryOp::Neg, Typed::Number(id)) => Ok(Typed::Number(match self.constant(id) {
                Some(c) => self.number(-f64::from(c)),
                None => self.program.add(Node::Neg(id)),
            })),
            (UnaryOp::Not, other) => {
                err(operand.span, format!("'!' needs a bool, not {}", other.describe(self.schema)))
            }
            (UnaryOp::Neg, other) => {
                err(operand.span, format!("'-' needs a number, not {}", other.describe(self.schema)))
            }
        }
    }

    fn not(&mut self, id: NodeId) -> NodeId {
        match self.program.node(id) {
            Node::Not(inner) => *inner,
            Node::BoolConst(b) => self.program.add(Node::BoolConst(!b)),
            _ => self.program.add(Node::Not(id)),
        }
    }

    fn binary(&mut self, op: BinaryOp, left: &Expr, right: &Expr, span: Span) -> Checked<Typed> {
        if op == BinaryOp::In {
            return self.membership(left, right);
        }
        let (a, b) = (self.typed(left)?, self.typed(right)?);
        let mismatch = |this: &Self, a: &Typed, b: &Typed| -> Checked<Typed> {
            err(
                span,
                format!(
                    "cannot apply '{}' to {} and {}",
                    op.symbol(),
                    a.describe(this.schema),
                    b.describe(this.schema)
                ),
            )
        };
        match op {
            BinaryOp::And | BinaryOp::Or => match (a, b) {
                (Typed::Bool(x), Typed::Bool(y)) => {
                    let node = if op == BinaryOp::And { Node::And(x, y) } else { Node::Or(x, y) };
                    Ok(Typed::Bool(self.program.add(node)))
                }
                (a, b) => mismatch(self, &a, &b),
            },
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => match (a, b) {
                (Typed::Number(x), Typed::Number(y)) => Ok(Typed::Number(self.arith(op, x, y))),
                (a, b) => mismatch(self, &a, &b),
            },
            _ => {
                let cmp = comparison(op);
                match (a, b) {
                    (Typed::Number(x), Typed::Number(y)) => Ok(Typed::Bool(self.compare(cmp, x, y))),
                    (Typed::Bool(x), Typed::Bool(y)) if matches!(cmp, CmpOp::Eq | CmpOp::Ne) => {
                        let differ = self.program.add(Node::Xor(x, y));
                        Ok(Typed::Bool(if cmp == CmpOp::Ne { differ } else { self.not(differ) }))
                    }
                    (Typed::Category(f, x), Typed::Str(s)) | (Typed::Str(s), Typed::Category(f, x))
                        if matches!(cmp, CmpOp::Eq | CmpOp::Ne) =>
                    {
                        let code = self.category_code(f, &s, span)?;
                        Ok(Typed::Bool(self.program.add(Node::CmpConst(cmp, x, Bits::new(code)))))
                    }
                    (a, b) => mismatch(self, &a, &b),
                }
            }
        }
    }

    fn arith(&mut self, op: BinaryOp, x: NodeId, y: NodeId) -> NodeId {
        let op = match op {
            BinaryOp::Add => ArithOp::Add,
            BinaryOp::Sub => ArithOp::Sub,
            BinaryOp::Mul => ArithOp::Mul,
            BinaryOp::Div => ArithOp::Div,
            _ => ArithOp::Rem,
        };
        match (self.constant(x), self.constant(y)) {
            (Some(a), Some(b)) => self.program.add(Node::Const(Bits::new(op.apply(a, b)))),
            _ => self.program.add(Node::Arith(op, x, y)),
        }
    }

    /// Comparisons against a constant get their own node so batches compare in one pass.
    fn compare(&mut self, op: CmpOp, x: NodeId, y: NodeId) -> NodeId {
        let node = match (self.constant(x), self.constant(y)) {
            (Some(a), Some(b)) => Node::BoolConst(op.apply(a, b)),
            (None, Some(c)) => Node::CmpConst(op, x, Bits::new(c)),
            (Some(c), None) => Node::CmpConst(op.flipped(), y, Bits::new(c)),
            (None, None) => Node::Cmp(op, x, y),
        };
        self.program.add(node)
    }

    fn category_code(&self, feature: usize, value: &str, span: Span) -> Checked<f32> {
        let f = &self.schema.features()[feature];
        f.category_code(value).map_or_else(
            || {
                let FeatureKind::Category(values) = &f.kind else { unreachable!() };
                err(span, format!("category '{}' has no value '{value}'; its values are {}", f.name, values.join(", ")))
            },
            Ok,
        )
    }

    fn membership(&mut self, left: &Expr, right: &Expr) -> Checked<Typed> {
        let ExprKind::List(items) = &right.kind else {
            return err(right.span, "'in' needs a list such as [1, 2] or [\"gold\", \"silver\"]");
        };
        let mut codes = Vec::with_capacity(items.len());
        let subject = match self.typed(left)? {
            Typed::Number(x) => {
                for item in items {
                    match literal_number(item) {
                        Some(n) => codes.push(Bits::new(n as f32)),
                        None => {
                            return err(item.span, "list items compared with a number must be number literals");
                        }
                    }
                }
                x
            }
            Typed::Category(f, x) => {
                for item in items {
                    match &item.kind {
                        ExprKind::Str(s) => codes.push(Bits::new(self.category_code(f, s, item.span)?)),
                        _ => {
                            return err(
                                item.span,
                                format!(
                                    "list items compared with category '{}' must be strings",
                                    self.schema.features()[f].name
                                ),
                            );
                        }
                    }
                }
                x
            }
            other => {
                return err(
                    left.span,
                    format!("'in' needs a number or a category on its left, not {}", other.describe(self.schema)),
                );
            }
        };
        codes.sort_unstable_by(|a, b| a.get().total_cmp(&b.get()));
        codes.dedup();
        let node = if codes.is_empty() { Node::BoolConst(false) } else { Node::InSet(subject, codes) };
        Ok(Typed::Bool(self.program.add(node)))
    }
}

fn comparison(op: BinaryOp) -> CmpOp {
    match op {
        BinaryOp::Eq => CmpOp::Eq,
        BinaryOp::Ne => CmpOp::Ne,
        BinaryOp::Lt => CmpOp::Lt,
        BinaryOp::Le => CmpOp::Le,
        BinaryOp::Gt => CmpOp::Gt,
        _ => CmpOp::Ge,
    }
}

fn literal_number(expr: &Expr) -> Option<f64> {
    match &expr.kind {
        ExprKind::Number(n) => Some(*n),
        ExprKind::Unary(UnaryOp::Neg, inner) => literal_number(inner).map(|n| -n),
        _ => None,
    }
}

/// The known name nearest to a misspelt one, when it is close enough to be a likely typo.
fn closest<'n>(name: &str, known: impl Iterator<Item = &'n str>) -> Option<&'n str> {
    known
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}
