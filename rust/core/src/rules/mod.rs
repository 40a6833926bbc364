//! Eligibility rules: parse (pest), type-check against the schema, compile into one shared
//! plan, evaluate over a single profile or a batch.

mod ast;
mod batch;
mod compile;
mod parser;
mod program;

pub use batch::{ChunkScratch, LANES, eval_chunk};
pub use program::{NodeId, Program};

use crate::error::{Error, Location, Result, RulePosition};

/// Deepest a rule may nest (brackets, prefix operators, or operands of a chain such as
/// `a && b && ...`): every pass over a rule (parse, type check, compile, explain) recurses,
/// and this bound keeps them all far inside a thread's stack.
pub const MAX_RULE_DEPTH: usize = 200;
/// Longest rule text accepted, in bytes.
pub const MAX_RULE_BYTES: usize = 65_536;
use crate::schema::Schema;

/// One offer's compiled rule: its root node and, for explanations, the clauses of a
/// top-level `&&` with their source text.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub root: NodeId,
    pub clauses: Vec<(NodeId, String)>,
}

/// The rules of a set of offers compiled into one plan.
#[derive(Debug, Clone)]
pub struct RuleSet {
    program: Program,
    rules: Vec<CompiledRule>,
}

impl RuleSet {
    /// Compiles `(where, rule text)` pairs; `None` text means "always eligible".
    pub fn compile<'t>(schema: &Schema, rules: impl IntoIterator<Item = (Location, Option<&'t str>)>) -> Result<Self> {
        let mut program = Program::default();
        let always = program.add(program::Node::BoolConst(true));
        let mut compiled = Vec::new();
        for (location, text) in rules {
            let Some(text) = text else {
                compiled.push(CompiledRule { root: always, clauses: Vec::new() });
                continue;
            };
            let expr = parser::parse(text).map_err(|e| Error::Rule {
                location: location.clone(),
                position: e.position,
                detail: e.detail,
            })?;
            let mut compiler = compile::Compiler { schema, program: &mut program };
            let to_error = |e: compile::TypeError| Error::Rule {
                location: location.clone(),
                position: position_in(text, e.span.0),
                detail: e.detail,
            };
            let root = compiler.compile_rule(&expr).map_err(to_error)?;
            let clauses = expr
                .conjuncts()
                .into_iter()
                .map(|c| Ok((compiler.compile_rule(c).map_err(to_error)?, text[c.span.0..c.span.1].to_owned())))
                .collect::<Result<_>>()?;
            compiled.push(CompiledRule { root, clauses });
        }
        Ok(Self { program, rules: compiled })
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// After [`Program::eval_row`]: does rule `index` hold?
    pub fn holds(&self, values: &[f32], index: usize) -> bool {
        values[self.rules[index].root as usize] != 0.0
    }

    /// After [`Program::eval_row`]: the first clause of rule `index` that is false.
    pub fn failing_clause(&self, values: &[f32], index: usize) -> Option<&str> {
        let rule = &self.rules[index];
        rule.clauses.iter().find(|(id, _)| values[*id as usize] == 0.0).map(|(_, text)| text.as_str())
    }

    /// Evaluates every rule over `rows` (row-major, `dim` features each) into `out`,
    /// row-major `n x len()` of 0/1 bytes. Single-threaded; callers split work across threads.
    pub fn eval_rows_into(&self, rows: &[f32], dim: usize, out: &mut [u8], scratch: &mut ChunkScratch) {
        let n_rules = self.rules.len();
        for (chunk, out_chunk) in rows.chunks(LANES * dim).zip(out.chunks_mut(LANES * n_rules)) {
            let n = chunk.len() / dim;
            eval_chunk(&self.program, chunk, dim, n, scratch);
            for (r, rule) in self.rules.iter().enumerate() {
                let truth = scratch.truth(rule.root);
                for (row, t) in truth.iter().take(n).enumerate() {
                    out_chunk[row * n_rules + r] = *t;
                }
            }
        }
    }
}

/// 1-based line and column of a byte offset in `text`.
pub(super) fn position_in(text: &str, offset: usize) -> RulePosition {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    RulePosition { line, column }
}

#[cfg(test)]
mod tests;
