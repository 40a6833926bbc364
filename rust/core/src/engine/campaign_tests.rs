//! A campaign split into batches: per-profile random streams, budget prices from a sample,
//! and partition quotas that keep a budget exact however the rows are split.

use super::*;
use crate::catalog::Catalog;

const NOW: f64 = 1_000.0 * 86_400.0;

/// Four offers on one thompson placement; `loan` and `card` have impression budgets, and
/// eligibility depends on the profile's one feature, so profiles have different options.
fn catalog() -> Catalog {
    catalog_with(40, 60)
}

fn catalog_with(loan: u64, card: u64) -> Catalog {
    Catalog::from_json(
        &r#"{
      "features": [{"name": "score", "type": "int"}],
      "channels": ["web"],
      "placements": [{"id": "hero", "channel": "web", "slots": 1, "policy": {"type": "thompson"}}],
      "offers": [
        {"id": "loan", "placements": ["hero"], "value": 9, "budget": {"max": LOAN, "window": 86400, "counts": "impressions", "pacing": "none"}},
        {"id": "card", "placements": ["hero"], "value": 6, "rule": "score > 30",
         "budget": {"max": CARD, "window": 86400, "counts": "impressions", "pacing": "none"}},
        {"id": "fund", "placements": ["hero"], "value": 5, "rule": "score > 60"},
        {"id": "news", "placements": ["hero"], "value": 1}
      ]
    }"#
        .replace("LOAN", &loan.to_string())
        .replace("CARD", &card.to_string()),
    )
    .unwrap()
}

fn rows(n: usize) -> (Vec<f32>, Vec<String>) {
    ((0..n).map(|i| ((i * 37) % 100) as f32).collect(), (0..n).map(|i| format!("p{i}")).collect())
}

fn request<'a>(features: &'a [f32], ids: &'a [&'a str]) -> BatchRequest<'a> {
    BatchRequest { placement: "hero", features, now: NOW, profile_ids: Some(ids), ..BatchRequest::default() }
}

/// Catalog offer id per row, "" where empty.
fn offers(e: &Engine, batch: &BatchDecision) -> Vec<String> {
    let catalog = &e.current().catalog;
    batch.offers.iter().map(|&o| if o < 0 { String::new() } else { catalog.offers[o as usize].id.clone() }).collect()
}

#[test]
fn a_profile_stream_makes_the_same_decisions_however_the_rows_are_split() {
    let (features, ids) = rows(600);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    // Budgets that never run out: which offers are left depends on nothing but the profile.
    let catalog = || catalog_with(10_000, 10_000);
    let whole = Engine::new(catalog(), 5).simulated();
    let all = whole.decide_batch(&BatchRequest { stream: Some(11), ..request(&features, &ids) }).unwrap();
    let expected = offers(&whole, &all);

    // Another engine of the same seed decides the rows in two parts, the second part first.
    let split = Engine::new(catalog(), 5).simulated();
    let (head, tail) = (250, 600 - 250);
    let second =
        split.decide_batch(&BatchRequest { stream: Some(11), ..request(&features[head..], &ids[head..]) }).unwrap();
    let first =
        split.decide_batch(&BatchRequest { stream: Some(11), ..request(&features[..head], &ids[..head]) }).unwrap();
    let mut got = offers(&split, &first);
    got.extend(offers(&split, &second));
    assert_eq!(got.len(), head + tail);
    assert_eq!(got, expected);
    assert!(expected.iter().collect::<std::collections::HashSet<_>>().len() == 4, "every offer is drawn");

    // By decision id instead, the draws follow the order of decisions, so some differ.
    let by_id = Engine::new(catalog(), 5).simulated();
    let _ = by_id.decide_batch(&request(&features[head..], &ids[head..])).unwrap();
    let again = by_id.decide_batch(&request(&features[..head], &ids[..head])).unwrap();
    let reference =
        Engine::new(catalog(), 5).simulated().decide_batch(&request(&features[..head], &ids[..head])).unwrap();
    assert_ne!(again.offers, reference.offers);
}

#[test]
fn a_stream_needs_profile_ids_and_prices_one_per_offer() {
    let e = Engine::new(catalog(), 1).simulated();
    let (features, _) = rows(10);
    let no_ids =
        BatchRequest { placement: "hero", features: &features, now: NOW, stream: Some(1), ..Default::default() };
    assert!(e.decide_batch(&no_ids).unwrap_err().to_string().contains("needs profile_ids"));
    let prices = [1.0, 2.0];
    let short =
        BatchRequest { placement: "hero", features: &features, now: NOW, prices: Some(&prices), ..Default::default() };
    assert!(e.decide_batch(&short).unwrap_err().to_string().contains("one per catalog offer"));
    let negative = [1.0, -2.0, 0.0, 0.0];
    let bad = BatchRequest { prices: Some(&negative), ..short };
    assert!(e.decide_batch(&bad).unwrap_err().to_string().contains("non-negative"));
}

#[test]
fn quotas_keep_a_budget_exact_across_partitions() {
    let (features, ids) = rows(900);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let driver = Engine::new(catalog(), 3).simulated();
    let sample = BatchRequest { placement: "hero", features: &features[..300], now: NOW, ..Default::default() };
    let priced = driver.budget_prices(&sample, 900).unwrap();
    assert_eq!(priced.iter().map(|b| (b.offer, b.room)).collect::<Vec<_>>(), [(0, 40), (1, 60)]);
    assert!(priced.iter().all(|b| b.price > 0.0), "both budgets bind: {priced:?}");
    let mut prices = vec![0.0; 4];
    priced.iter().for_each(|b| prices[b.offer] = b.price);

    // Three partitions, each with its own engine (its own copy of the budgets), share the
    // room through quotas: the first two take what they choose, the last what is left.
    let mut left = [40u64, 60];
    let mut taken = [0u64; 2];
    let mut value = 0.0;
    for part in 0..3 {
        let e = Engine::new(catalog(), 3).simulated();
        let range = part * 300..(part + 1) * 300;
        let quota = [left[0], left[1], u64::MAX, u64::MAX];
        let batch = e
            .decide_batch(&BatchRequest {
                prices: Some(&prices),
                quota: Some(&quota),
                stream: Some(2),
                propensities: true,
                ..request(&features[range.clone()], &ids[range])
            })
            .unwrap();
        for (j, count) in taken.iter_mut().enumerate() {
            let used = batch.offers.iter().filter(|&&o| o == j as i32).count() as u64;
            assert!(used <= left[j]);
            left[j] -= used;
            *count += used;
        }
        value += batch.scores.iter().filter(|s| !s.is_nan()).map(|&s| f64::from(s)).sum::<f64>();
        let props = batch.propensities.unwrap();
        assert!(batch.offers.iter().zip(&props).all(|(&o, &p)| o < 0 || p == 1.0), "priced picks are deterministic");
    }
    assert!(taken[0] <= 40 && taken[1] <= 60, "{taken:?}");
    assert!(taken[0] >= 32 && taken[1] >= 54, "the prices spend the budgets nearly in full: {taken:?}");
    // The one-batch allocation of the same 900 profiles on one engine.
    let one = Engine::new(catalog(), 3).simulated();
    let whole = BatchRequest { placement: "hero", features: &features, now: NOW, ..Default::default() };
    let best: f64 =
        one.allocate_batch(&whole).unwrap().scores.iter().filter(|s| !s.is_nan()).map(|&s| f64::from(s)).sum();
    assert!(value >= 0.98 * best, "{value} of {best}");

    // A quota of zero keeps a partition off the offer entirely, with its own reason.
    let e = Engine::new(catalog(), 3).simulated();
    let zero = [0, 0, u64::MAX, u64::MAX];
    let batch = e
        .decide_batch(&BatchRequest {
            prices: Some(&prices),
            quota: Some(&zero),
            ..request(&features[..300], &ids[..300])
        })
        .unwrap();
    assert!(batch.offers.iter().all(|&o| o != 0 && o != 1));
    assert_eq!(e.budget_usage("loan", NOW).unwrap(), Some((0, 40)), "refused quota gives the budget back");
}

#[test]
fn budget_prices_refuse_a_sample_larger_than_the_run() {
    let e = Engine::new(catalog(), 3).simulated();
    let (features, _) = rows(50);
    let sample = BatchRequest { placement: "hero", features: &features, now: NOW, ..Default::default() };
    assert!(e.budget_prices(&sample, 10).unwrap_err().to_string().contains("at least the 50 sampled rows"));
}
