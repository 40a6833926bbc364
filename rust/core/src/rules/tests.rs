use super::*;
use crate::schema::{Feature, FeatureKind};

fn schema() -> Schema {
    let f = |name: &str, kind| Feature { name: name.to_owned(), kind };
    Schema::new(vec![
        f("age", FeatureKind::Int),
        f("spend", FeatureKind::Float),
        f("owns_card", FeatureKind::Bool),
        f("segment", FeatureKind::Category(vec!["bronze".into(), "silver".into(), "gold".into()])),
    ])
    .unwrap()
}

fn one(rule: &str) -> Result<RuleSet> {
    RuleSet::compile(&schema(), [(Location::Offer("o".into()), Some(rule))])
}

fn holds(rule: &str, row: [f32; 4]) -> bool {
    let set = one(rule).unwrap();
    let mut values = Vec::new();
    set.program().eval_row(&row, &mut values);
    set.holds(&values, 0)
}

fn rule_error(rule: &str) -> (RulePosition, String) {
    match one(rule) {
        Err(Error::Rule { position, detail, .. }) => (position, detail),
        other => panic!("expected a rule error, got {other:?}"),
    }
}

#[test]
fn evaluates_every_shape() {
    let row = [30.0, 250.0, 0.0, 2.0];
    assert!(holds("age >= 21 && segment in [\"gold\", \"silver\"] && !owns_card", row));
    assert!(!holds("age < 21 || owns_card", row));
    assert!(holds("spend / (age - 5) > 9.5 && spend % 100 == 50", row));
    assert!(holds("segment != 'bronze' && age in [29, 30, 31]", row));
    assert!(holds("owns_card == false && -age < -29 && 21 <= age", row));
    assert!(holds("(age > 60 || spend > 100) && true", row));
}

#[test]
fn shares_common_subexpressions() {
    let set = RuleSet::compile(
        &schema(),
        [(Location::Catalog, Some("age >= 21 && spend > 5")), (Location::Catalog, Some("age >= 21 || owns_card"))],
    )
    .unwrap();
    let compares = set.program().nodes().iter().filter(|n| matches!(n, program::Node::CmpConst(..))).count();
    assert_eq!(compares, 2, "age >= 21 is built once");
}

#[test]
fn type_errors_point_at_the_problem() {
    let (pos, detail) = rule_error("age >= 21 && agee < 3");
    assert_eq!((pos.line, pos.column), (1, 14));
    assert!(detail.contains("unknown feature 'agee'") && detail.contains("did you mean 'age'"), "{detail}");

    let (pos, detail) = rule_error("segment == 3");
    assert_eq!(pos.column, 1);
    assert!(detail.contains("category 'segment'") && detail.contains("a number"), "{detail}");

    let (pos, detail) = rule_error("age > 1 &&\n  segment in [\"gold\", \"platinum\"]");
    assert_eq!((pos.line, pos.column), (2, 23));
    assert!(detail.contains("no value 'platinum'"), "{detail}");

    let (_, detail) = rule_error("age + 1");
    assert!(detail.contains("must be true or false"), "{detail}");
    let (_, detail) = rule_error("!age");
    assert!(detail.contains("'!' needs a bool"), "{detail}");
    let (_, detail) = rule_error("age in [1, spend]");
    assert!(detail.contains("number literals"), "{detail}");
}

#[test]
fn syntax_errors_are_rule_errors() {
    let (pos, detail) = rule_error("age >= && owns_card");
    assert_eq!((pos.line, pos.column), (1, 8));
    assert!(detail.starts_with("syntax error"), "{detail}");
}

#[test]
fn names_the_failing_clause() {
    let set = one("age >= 21 && segment == \"gold\" && !owns_card").unwrap();
    let mut values = Vec::new();
    set.program().eval_row(&[30.0, 0.0, 1.0, 2.0], &mut values);
    assert_eq!(set.failing_clause(&values, 0), Some("!owns_card"));
}

#[test]
fn batch_matches_single_rows() {
    let rules = [
        "age >= 21 && segment in [\"gold\", \"silver\"]",
        "spend / (age + 1) > 3 || owns_card",
        "!(segment == \"bronze\") && age % 2 == 0",
    ];
    let set = RuleSet::compile(&schema(), rules.iter().map(|r| (Location::Catalog, Some(*r)))).unwrap();
    let n = LANES * 2 + 37;
    let rows: Vec<f32> =
        (0..n).flat_map(|i| [(i % 70) as f32, (i * 7 % 300) as f32, (i % 2) as f32, (i % 3) as f32]).collect();
    let mut out = vec![9u8; n * rules.len()];
    let mut scratch = ChunkScratch::new(set.program());
    set.eval_rows_into(&rows, 4, &mut out, &mut scratch);
    let mut values = Vec::new();
    for (i, row) in rows.chunks_exact(4).enumerate() {
        set.program().eval_row(row, &mut values);
        for r in 0..rules.len() {
            assert_eq!(out[i * rules.len() + r] == 1, set.holds(&values, r), "row {i} rule {r}");
        }
    }
}

/// Runs `f` on a thread with the smallest stack any of our threads has (Rust's default, which rayon uses), so a
/// recursion the depth limit misses shows as a crash here.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(2 * 1024 * 1024).spawn(f).unwrap().join().unwrap()
}

fn nested(open: &str, core: &str, close: &str, levels: usize) -> String {
    format!("{}{core}{}", open.repeat(levels), close.repeat(levels))
}

#[test]
fn nesting_at_the_limit_compiles_and_beyond_it_is_a_rule_error() {
    let cases: [(&str, &str); 3] = [("(", ")"), ("!", ""), ("- ", "")];
    for (open, close) in cases {
        let core = if open == "- " { "age" } else { "owns_card" };
        // `-age` needs a comparison to be a bool; brackets and `!` stand alone.
        let at_limit = |levels| {
            let inner = nested(open, core, close, levels);
            if open == "- " { format!("{inner} < 3") } else { inner }
        };
        let ok = at_limit(MAX_RULE_DEPTH - 2);
        let deep = at_limit(MAX_RULE_DEPTH + 1);
        let huge = at_limit(30_000); // under the length limit: the depth check must catch it
        on_small_stack(move || {
            one(&ok).unwrap_or_else(|e| panic!("{e}"));
            for text in [deep, huge] {
                let (pos, detail) = rule_error(&text);
                assert!(detail.contains("nests more than 200 levels"), "{detail}");
                assert_eq!(pos.line, 1);
            }
        });
    }
}

#[test]
fn long_operator_chains_are_bounded() {
    let chain = |n: usize| vec!["age > 1"; n].join(" && ");
    let (ok, deep, long) = (chain(MAX_RULE_DEPTH - 1), chain(MAX_RULE_DEPTH + 1), chain(20_000));
    on_small_stack(move || {
        let set = one(&ok).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.rules()[0].clauses.len(), MAX_RULE_DEPTH - 1);
        let (pos, detail) = rule_error(&deep);
        assert!(detail.contains("nests more than"), "{detail}");
        assert_eq!(pos.line, 1);
        let (_, detail) = rule_error(&long);
        assert!(detail.contains("bytes long; the limit is 65536"), "{detail}");
    });
}

#[test]
fn a_literal_out_of_range_is_an_error_not_infinity() {
    let (pos, detail) = rule_error("age < 1e999999");
    assert_eq!(pos.column, 7);
    assert!(detail.contains("'1e999999' is not a finite number"), "{detail}");
}

#[test]
fn brackets_inside_strings_and_comments_do_not_count() {
    let text = format!("segment == '{}' // {}\n&& age > 1", "(".repeat(500), "[".repeat(500));
    let (_, detail) = rule_error(&text);
    assert!(detail.contains("has no value"), "{detail}");
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    const TOKENS: &[&str] = &[
        "age",
        "spend",
        "owns_card",
        "segment",
        "'gold'",
        "\"x\"",
        "1",
        "2.5",
        "1e308",
        "true",
        "in",
        "(",
        ")",
        "[",
        "]",
        ",",
        "&&",
        "||",
        "!",
        "-",
        "+",
        "*",
        "/",
        "%",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        " ",
        "\n",
        "//c\n",
        "\\",
    ];

    fn token_soup() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(TOKENS), 0..400).prop_map(|t| t.concat())
    }

    fn deep_rule() -> impl Strategy<Value = String> {
        (prop::sample::select(&["(", "!", "-", "[", "!(", "(-"][..]), 0usize..3000, token_soup())
            .prop_map(|(open, n, tail)| format!("{}{tail}", open.repeat(n)))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Any text compiles or is a rule error with a position inside it; nothing panics
        /// or overflows a small stack.
        #[test]
        fn never_crashes(text in prop_oneof![token_soup(), deep_rule()]) {
            let lines = text.lines().count().max(1);
            let outcome = on_small_stack(move || one(&text).map(|_| ()));
            if let Err(Error::Rule { position, .. }) = outcome {
                prop_assert!(position.line >= 1 && position.line <= lines + 1);
            }
        }
    }
}
