//! Rule text -> syntax tree, with pest and a Pratt parser for operator precedence.

use std::sync::LazyLock;

use pest::Parser as _;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::{BinaryOp, Expr, ExprKind, Span, UnaryOp};
use super::{MAX_RULE_BYTES, MAX_RULE_DEPTH};
use crate::error::RulePosition;

#[derive(pest_derive::Parser)]
#[grammar = "rules/grammar.pest"]
struct RuleParser;

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PrattParser::new()
        .op(Op::infix(Rule::or, Assoc::Left))
        .op(Op::infix(Rule::and, Assoc::Left))
        .op(Op::infix(Rule::eq, Assoc::Left)
            | Op::infix(Rule::ne, Assoc::Left)
            | Op::infix(Rule::lt, Assoc::Left)
            | Op::infix(Rule::le, Assoc::Left)
            | Op::infix(Rule::gt, Assoc::Left)
            | Op::infix(Rule::ge, Assoc::Left)
            | Op::infix(Rule::in_op, Assoc::Left))
        .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
        .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::div, Assoc::Left) | Op::infix(Rule::rem, Assoc::Left))
        .op(Op::prefix(Rule::not) | Op::prefix(Rule::neg))
});

/// A syntax error: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub position: RulePosition,
    pub detail: String,
}

pub fn parse(text: &str) -> Result<Expr, SyntaxError> {
    if text.len() > MAX_RULE_BYTES {
        return Err(SyntaxError {
            position: RulePosition { line: 1, column: 1 },
            detail: format!("rule is {} bytes long; the limit is {MAX_RULE_BYTES}", text.len()),
        });
    }
    // pest descends recursively into brackets and prefix operators: bound them before it runs.
    check_nesting(text)?;
    let mut pairs = RuleParser::parse(Rule::rule, text).map_err(syntax_error)?;
    let rule = pairs.next().expect("grammar: rule matched");
    let expr = rule.into_inner().next().expect("grammar: rule holds an expr");
    parse_expr(expr.into_inner())
}

/// Refuses text whose brackets or runs of prefix operators (`!`, `-`) nest deeper than
/// [`MAX_RULE_DEPTH`], pointing at the first character past the limit.
fn check_nesting(text: &str) -> Result<(), SyntaxError> {
    let (mut brackets, mut prefixes) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if let Some(q) = quote {
            match c {
                '\\' => {
                    chars.next();
                }
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '/' if chars.peek().is_some_and(|(_, n)| *n == '/') => {
                while chars.next_if(|(_, n)| *n != '\n').is_some() {}
            }
            '(' | '[' => brackets += 1,
            ')' | ']' => brackets = brackets.saturating_sub(1),
            '!' if chars.peek().is_some_and(|(_, n)| *n == '=') => {}
            '!' | '-' => prefixes += 1,
            _ if c.is_whitespace() => {}
            _ => prefixes = 0,
        }
        if brackets > MAX_RULE_DEPTH || prefixes > MAX_RULE_DEPTH {
            return Err(too_deep(text, at));
        }
    }
    Ok(())
}

fn too_deep(text: &str, at: usize) -> SyntaxError {
    SyntaxError {
        position: super::position_in(text, at),
        detail: format!(
            "rule nests more than {MAX_RULE_DEPTH} levels deep (brackets, '!' or '-', or a chain of \
             operators); split it into simpler clauses or use `in [...]`"
        ),
    }
}

/// `expr` built from `kind`, unless it would nest deeper than [`MAX_RULE_DEPTH`].
fn bounded(kind: ExprKind, span: Span, text: &str) -> Result<Expr, SyntaxError> {
    let expr = Expr::new(kind, span);
    if expr.depth > MAX_RULE_DEPTH {
        return Err(too_deep(text, span.0));
    }
    Ok(expr)
}

fn syntax_error(err: pest::error::Error<Rule>) -> SyntaxError {
    let (line, column) = match err.line_col {
        pest::error::LineColLocation::Pos(pos) | pest::error::LineColLocation::Span(pos, _) => pos,
    };
    let detail = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut expected: Vec<&str> = positives.iter().filter_map(|r| describe(*r)).collect();
            expected.sort_unstable();
            expected.dedup();
            if expected.is_empty() {
                "syntax error".to_owned()
            } else {
                format!("syntax error: expected {}", expected.join(", "))
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    SyntaxError { position: RulePosition { line, column }, detail }
}

/// Human names for the grammar's tokens in "expected ..." messages.
fn describe(token: Rule) -> Option<&'static str> {
    Some(match token {
        Rule::EOI => "end of rule",
        Rule::expr | Rule::paren | Rule::number | Rule::string | Rule::boolean | Rule::ident | Rule::list => {
            "a value or feature name"
        }
        Rule::or | Rule::and => "a logical operator (&&, ||)",
        Rule::eq | Rule::ne | Rule::lt | Rule::le | Rule::gt | Rule::ge | Rule::in_op => {
            "a comparison (==, !=, <, <=, >, >=, in)"
        }
        Rule::add | Rule::sub | Rule::mul | Rule::div | Rule::rem => "an operator",
        Rule::not | Rule::neg => "'!' or '-'",
        _ => return None,
    })
}

fn span_of(pair: &Pair<'_, Rule>) -> (usize, usize) {
    let span = pair.as_span();
    (span.start(), span.end())
}

fn parse_expr(pairs: Pairs<'_, Rule>) -> Result<Expr, SyntaxError> {
    PRATT
        .map_primary(parse_primary)
        .map_prefix(|op, operand| {
            let operand = operand?;
            let unary = if op.as_rule() == Rule::not { UnaryOp::Not } else { UnaryOp::Neg };
            let span = (op.as_span().start(), operand.span.1);
            bounded(ExprKind::Unary(unary, Box::new(operand)), span, op.get_input())
        })
        .map_infix(|left, op, right| {
            let (left, right) = (left?, right?);
            let binary = match op.as_rule() {
                Rule::or => BinaryOp::Or,
                Rule::and => BinaryOp::And,
                Rule::eq => BinaryOp::Eq,
                Rule::ne => BinaryOp::Ne,
                Rule::lt => BinaryOp::Lt,
                Rule::le => BinaryOp::Le,
                Rule::gt => BinaryOp::Gt,
                Rule::ge => BinaryOp::Ge,
                Rule::in_op => BinaryOp::In,
                Rule::add => BinaryOp::Add,
                Rule::sub => BinaryOp::Sub,
                Rule::mul => BinaryOp::Mul,
                Rule::div => BinaryOp::Div,
                Rule::rem => BinaryOp::Rem,
                other => unreachable!("grammar: {other:?} is not an infix operator"),
            };
            let span = (left.span.0, right.span.1);
            bounded(ExprKind::Binary(binary, Box::new(left), Box::new(right)), span, op.get_input())
        })
        .parse(pairs)
}

fn parse_primary(pair: Pair<'_, Rule>) -> Result<Expr, SyntaxError> {
    let span = span_of(&pair);
    let input = pair.get_input();
    let kind = match pair.as_rule() {
        // The span of `( ... )` keeps its parentheses, so explanations quote whole clauses.
        Rule::paren => {
            let inner = pair.into_inner().next().expect("grammar: paren holds an expr");
            return parse_expr(inner.into_inner()).map(|e| Expr { span, ..e });
        }
        Rule::number => {
            ExprKind::Number(pair.as_str().parse::<f64>().ok().filter(|n| n.is_finite()).ok_or_else(|| {
                SyntaxError {
                    position: position_of(&pair),
                    detail: format!("'{}' is not a finite number", pair.as_str()),
                }
            })?)
        }
        Rule::string => {
            let inner = pair.into_inner().next().expect("grammar: string has inner");
            ExprKind::Str(unescape(inner.as_str()))
        }
        Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
        Rule::ident => ExprKind::Ident(pair.as_str().to_owned()),
        Rule::list => {
            ExprKind::List(pair.into_inner().map(|item| parse_expr(item.into_inner())).collect::<Result<_, _>>()?)
        }
        other => unreachable!("grammar: {other:?} is not a primary"),
    };
    bounded(kind, span, input)
}

fn position_of(pair: &Pair<'_, Rule>) -> RulePosition {
    let (line, column) = pair.line_col();
    RulePosition { line, column }
}

/// CEL string escapes we accept: \\ \" \' \n \t; any other escaped char stands for itself.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(e: &Expr) -> String {
        match &e.kind {
            ExprKind::Number(n) => n.to_string(),
            ExprKind::Str(s) => format!("{s:?}"),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::Ident(i) => i.clone(),
            ExprKind::List(items) => {
                format!("[{}]", items.iter().map(shape).collect::<Vec<_>>().join(","))
            }
            ExprKind::Unary(op, x) => format!("({op:?} {})", shape(x)),
            ExprKind::Binary(op, a, b) => format!("({} {} {})", shape(a), op.symbol(), shape(b)),
        }
    }

    #[test]
    fn precedence_follows_cel() {
        let e = parse("a || b && !c == d + 2 * 3").unwrap();
        assert_eq!(shape(&e), "(a || (b && ((Not c) == (d + (2 * 3)))))");
    }

    #[test]
    fn lists_strings_and_in() {
        let e = parse(r#"segment in ["gold", 'plat\'inum'] && x in [1, 2.5,]"#).unwrap();
        assert_eq!(shape(&e), r#"((segment in ["gold","plat'inum"]) && (x in [1,2.5]))"#);
    }

    #[test]
    fn keywords_are_not_identifiers_but_prefixes_are() {
        let e = parse("inside > 1 && true_value").unwrap();
        assert_eq!(shape(&e), "((inside > 1) && true_value)");
    }

    #[test]
    fn spans_cover_the_source() {
        let text = "age >= 21 && !owns_card";
        let e = parse(text).unwrap();
        let parts: Vec<&str> = e.conjuncts().iter().map(|c| &text[c.span.0..c.span.1]).collect();
        assert_eq!(parts, ["age >= 21", "!owns_card"]);
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = parse("age >= 21 &&\n  segment ==").unwrap_err();
        assert_eq!(err.position, RulePosition { line: 2, column: 13 });
        assert!(err.detail.contains("expected"), "{}", err.detail);
        let err = parse("age >>= 3").unwrap_err();
        assert_eq!(err.position.column, 6);
    }
}
