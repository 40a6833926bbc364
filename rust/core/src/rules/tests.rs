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
    assert!(detail.contains("no value \"platinum\""), "{detail}");

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
