//! The contact policy through the engine: each rule, reservations, pages, budgets, threads.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::catalog::Catalog;
use crate::contact::Exclusion;

const DAY: f64 = 86_400.0;
const NOW: f64 = 1000.0 * DAY;

fn catalog(caps: &str, budget: &str) -> Catalog {
    Catalog::from_json(&catalog_json(caps, budget)).unwrap()
}

fn catalog_json(caps: &str, budget: &str) -> String {
    format!(
        r#"{{
      "features": [{{"name": "age", "type": "int"}}],
      "channels": ["web", "email"],
      "placements": [
        {{"id": "hero", "channel": "web", "slots": 2, "policy": {{"type": "thompson"}}}},
        {{"id": "side", "channel": "web", "slots": 2, "policy": {{"type": "thompson"}}}},
        {{"id": "mail", "channel": "email", "slots": 1, "policy": {{"type": "thompson"}}}}
      ],
      "offers": [
        {{"id": "card", "placements": ["hero", "side"], "group": "cards", "product": "card", "value": 5}},
        {{"id": "card_plus", "placements": ["hero", "side"], "group": "cards"}},
        {{"id": "loan", "placements": ["hero", "side", "mail"], "value": 3 {budget}}},
        {{"id": "news", "placements": ["hero", "side", "mail"]}}
      ],
      "contact_policy": {{"caps": [{caps}], "cooldown_after_conversion": {conv}, "cooldown_after_dismissal": {dis},
                         "suppress_purchased": true, "max_per_group": 1}}
    }}"#,
        conv = 14.0 * DAY,
        dis = 3.0 * DAY,
    )
}

fn decide(e: &Engine, placements: &[&str], profile: Option<&str>, now: f64) -> Vec<Decision> {
    // The profile consented to both channels: email is outbound and needs it.
    let consents = ["web", "email"];
    let request = DecideRequest {
        profile_id: profile,
        explain: true,
        consents: &consents,
        ..DecideRequest::new(placements, &[30.0], now)
    };
    e.decide_page(&request).unwrap()
}

fn shown(d: &Decision) -> Vec<&str> {
    d.offers.iter().map(|o| o.offer_id.as_str()).collect()
}

fn reason<'d>(d: &'d Decision, offer: &str) -> Option<&'d Reason> {
    d.reasons.iter().find(|(o, _)| o == offer).map(|(_, r)| r)
}

#[test]
fn an_outbound_channel_decides_nothing_without_its_consent() {
    let e = Engine::new(catalog("", ""), 1).simulated();
    let page = ["hero", "mail"];
    for consents in [&[][..], &["web"][..]] {
        let request = DecideRequest { consents, explain: true, ..DecideRequest::new(&page, &[30.0], NOW) };
        let decisions = e.decide_page(&request).unwrap();
        assert!(!decisions[0].offers.is_empty(), "web needs no consent: {decisions:?}");
        let mail = &decisions[1];
        assert!(mail.offers.is_empty(), "{mail:?}");
        assert_eq!(mail.reasons.len(), 2, "every offer of the placement says why");
        for (_, why) in &mail.reasons {
            assert_eq!(why, &Reason::NoConsent { channel: "email".into() });
            assert_eq!(why.to_string(), "no consent for channel 'email'");
        }
    }
    let with = DecideRequest { consents: &["email"], ..DecideRequest::new(&["mail"], &[30.0], NOW) };
    assert_eq!(e.decide_page(&with).unwrap()[0].offers.len(), 1);
    // the batch path: no consents matrix means no consent, a row with email's consent decides
    let rows = [30.0f32, 30.0];
    let consents = [1u8, 0, 1, 1];
    let batch = |consents| BatchRequest {
        placement: "mail",
        features: &rows,
        consents,
        now: NOW,
        propensities: false,
        profile_ids: None,
        ..Default::default()
    };
    let decided = e.decide_batch(&batch(Some(&consents))).unwrap();
    assert_eq!(decided.offers[0], -1, "row 0 consented to web only");
    assert!(decided.offers[1] >= 0, "row 1 consented to email");
    let none = e.decide_batch(&batch(None)).unwrap();
    assert!(none.offers.iter().all(|&o| o == -1), "{:?}", none.offers);
}

#[test]
fn no_request_time_rewrites_state_on_a_wall_clock() {
    let e = Engine::new(catalog(r#"{"scope": "all", "max": 3, "window": 604800}"#, ""), 1);
    let now = crate::limits::wall_seconds();
    let consents = ["web", "email"];
    let at = |t: f64| DecideRequest {
        profile_id: Some("p"),
        consents: &consents,
        ..DecideRequest::new(&["mail"], &[30.0], t)
    };
    let first = e.decide_page(&at(now)).unwrap().remove(0);
    assert_eq!(first.offers.len(), 1);
    let (pending, history) = (e.pending_decisions(), e.contact_history("p"));
    assert_eq!(history.len(), 1);
    for skewed in [now + 365.0 * DAY, now - 30.0 * DAY, now + 3600.0, f64::NAN] {
        let err = e.decide_page(&at(skewed)).unwrap_err().to_string();
        assert!(err.contains("server clock") || err.contains("finite"), "{err}");
        if skewed >= now || skewed.is_nan() {
            let future = ContactEvent { time: skewed, ..history[0].clone() };
            assert!(e.record_contact("p", future).is_err(), "a contact {skewed} is not stored");
        }
    }
    assert_eq!(e.pending_decisions(), pending, "nothing expired");
    assert_eq!(e.contact_history("p"), history, "history intact");
    e.report_outcome(first.decision_id, None, 1.0, false).unwrap();
    let old = ContactEvent { time: now - 2.0 * DAY, ..history[0].clone() };
    e.record_contact("p", old).unwrap();
    assert_eq!(e.contact_history("p").len(), 3, "a contact reported from the past is kept");
}

#[test]
fn profiles_that_were_shown_nothing_leave_nothing_behind() {
    let e = Engine::new(catalog("", ""), 1).simulated();
    let ids: Vec<String> = (0..500).map(|i| format!("c{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let rows = vec![30.0f32; ids.len()];
    // mail is on email, which needs consent: nothing is shown, nothing is kept
    let request = BatchRequest {
        placement: "mail",
        features: &rows,
        consents: None,
        now: NOW,
        propensities: false,
        profile_ids: Some(&ids),
        ..Default::default()
    };
    e.decide_batch(&request).unwrap();
    assert_eq!(e.contacts.profiles(), 0);
    e.decide_batch(&BatchRequest { placement: "hero", ..request }).unwrap();
    assert_eq!(e.contacts.profiles(), 500, "profiles shown an offer keep their history");
}

#[test]
fn a_channel_declares_whether_it_needs_consent() {
    let json = r#"{"features": [], "channels": [{"id": "email", "consent": "not_required"}, {"id": "kiosk", "consent": "required"}, "web"],
      "placements": [], "offers": []}"#;
    let c = Catalog::from_json(json).unwrap();
    assert_eq!(c.channels, ["email", "kiosk", "web"]);
    assert_eq!(c.consent_required, [false, true, false]);
}

#[test]
fn a_channel_cap_reserves_at_decision_time_and_release_gives_it_back() {
    let e = Engine::new(catalog(r#"{"scope": "channel", "channel": "email", "max": 1, "window": 86400}"#, ""), 1)
        .simulated();
    let first = decide(&e, &["mail"], Some("p"), NOW).remove(0);
    assert_eq!(first.offers.len(), 1);
    let second = decide(&e, &["mail"], Some("p"), NOW + 10.0).remove(0);
    assert!(second.offers.is_empty());
    let Some(Reason::Contact(Exclusion::Cap { cap, count: 1, max: 1, window })) = reason(&second, "news") else {
        panic!("{second:?}")
    };
    assert_eq!((cap.as_str(), *window), ("channel 'email' cap", DAY));
    assert!(decide(&e, &["hero"], Some("p"), NOW).remove(0).offers.len() == 2, "web is not capped");
    assert!(!decide(&e, &["mail"], Some("other"), NOW).remove(0).offers.is_empty(), "caps are per profile");

    e.release(first.decision_id).unwrap();
    assert!(e.report_outcome(first.decision_id, None, 1.0, false).is_err(), "a released decision takes no outcome");
    assert_eq!(decide(&e, &["mail"], Some("p"), NOW + 20.0).remove(0).offers.len(), 1);
    assert_eq!(decide(&e, &["mail"], Some("p"), NOW + DAY + 30.0).remove(0).offers.len(), 1, "the window slid");
}

#[test]
fn cooldowns_follow_conversions_and_dismissals() {
    let e = Engine::new(catalog("", ""), 2).simulated();
    let d = decide(&e, &["mail"], Some("p"), NOW).remove(0);
    let converted = d.offers[0].offer_id.clone();
    e.report_outcome(d.decision_id, None, 1.0, false).unwrap();
    let later = decide(&e, &["mail"], Some("p"), NOW + DAY).remove(0);
    assert!(matches!(
        reason(&later, &converted),
        Some(Reason::Contact(Exclusion::Cooldown { after: ContactKind::Converted, .. }))
    ));
    let other = later.offers[0].offer_id.clone();
    e.report_outcome(later.decision_id, None, 0.0, true).unwrap();
    let next = decide(&e, &["mail"], Some("p"), NOW + 2.0 * DAY).remove(0);
    assert!(next.offers.is_empty(), "{next:?}");
    assert!(matches!(
        reason(&next, &other),
        Some(Reason::Contact(Exclusion::Cooldown { after: ContactKind::Dismissed, .. }))
    ));
    let after = decide(&e, &["mail"], Some("p"), NOW + 4.5 * DAY).remove(0);
    assert_eq!(shown(&after), [other.as_str()], "the 3-day dismissal cooldown ended, the 14-day one did not");
}

#[test]
fn purchased_products_are_suppressed() {
    let e = Engine::new(catalog("", ""), 3).simulated();
    let request = DecideRequest { purchases: &["card"], explain: true, ..DecideRequest::new(&["hero"], &[30.0], NOW) };
    let d = e.decide(&request).unwrap();
    assert!(!shown(&d).contains(&"card"));
    assert_eq!(reason(&d, "card"), Some(&Reason::Contact(Exclusion::Purchased { product: "card".into() })));
}

#[test]
fn request_history_counts_like_stored_history() {
    let e = Engine::new(catalog(r#"{"scope": "all", "max": 2, "window": 604800}"#, ""), 4).simulated();
    let event = |offer: &str| ContactEvent {
        time: NOW - DAY,
        offer: offer.into(),
        channel: "email".into(),
        group: None,
        kind: ContactKind::Shown,
        decision_id: 0,
    };
    let history = [event("x"), event("y")];
    let request = DecideRequest { history: &history, explain: true, ..DecideRequest::new(&["hero"], &[30.0], NOW) };
    let d = e.decide(&request).unwrap();
    assert!(d.offers.is_empty());
    assert!(matches!(reason(&d, "news"), Some(Reason::Contact(Exclusion::Cap { count: 2, max: 2, .. }))));
}

#[test]
fn a_page_never_shows_an_offer_twice_and_keeps_group_limits() {
    let e = Engine::new(catalog("", ""), 5).simulated();
    for i in 0..200 {
        let page = decide(&e, &["hero", "side", "mail"], Some(&format!("p{i}")), NOW);
        let all: Vec<&str> = page.iter().flat_map(shown).collect();
        let mut unique = all.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(all.len(), unique.len(), "{all:?}");
        assert!(all.iter().filter(|o| o.starts_with("card")).count() <= 1, "{all:?}");
        assert_eq!(all.len(), 3, "hero 2 + side 1 left (cards group used) + nothing left for mail: {all:?}");
    }
    let page = decide(&e, &["hero", "side"], None, NOW);
    let first = shown(&page[0]);
    for offer in first {
        assert!(matches!(reason(&page[1], offer), Some(Reason::AlreadyOnPage { placement }) if placement == "hero"));
    }
}

#[test]
fn a_budget_is_never_exceeded_and_pacing_spreads_it() {
    let budget = r#", "budget": {"max": 10, "window": 86400, "counts": "impressions", "pacing": "none"}"#;
    let e = Engine::new(catalog("", budget), 6).simulated();
    let loans: usize = (0..300)
        .map(|_| decide(&e, &["mail"], None, NOW).iter().flat_map(shown).filter(|o| *o == "loan").count())
        .sum();
    assert_eq!(loans, 10);
    assert_eq!(e.budget_usage("loan", NOW).unwrap(), Some((10, 10)));

    let paced = r#", "budget": {"max": 100, "window": 86400, "counts": "impressions", "pacing": "even"}"#;
    let e = Engine::new(catalog("", paced), 7).simulated();
    let quarter_day = NOW + DAY / 4.0;
    let early: usize = (0..2000)
        .map(|_| decide(&e, &["mail"], None, quarter_day).iter().flat_map(shown).filter(|o| *o == "loan").count())
        .sum();
    assert_eq!(early, 27, "a quarter of the day allows 25% + 2% of the budget");
}

#[test]
fn concurrent_decisions_never_overshoot_a_cap_or_a_budget() {
    let budget = r#", "budget": {"max": 50, "window": 86400, "counts": "impressions", "pacing": "none"}"#;
    let e = Arc::new(Engine::new(catalog(r#"{"scope": "all", "max": 3, "window": 604800}"#, budget), 8).simulated());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                let mut same_profile = 0;
                for i in 0..300 {
                    same_profile += decide(&e, &["mail"], Some("shared"), NOW + f64::from(i))
                        .iter()
                        .map(|d| d.offers.len())
                        .sum::<usize>();
                    decide(&e, &["mail"], Some(&format!("t{t}-{i}")), NOW);
                }
                same_profile
            })
        })
        .collect();
    let shared: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(shared, 3, "one profile, 2400 concurrent decisions, a cap of 3");
    assert_eq!(e.budget_usage("loan", NOW).unwrap(), Some((50, 50)));
    let loan_contacts: usize = (0..8)
        .flat_map(|t| (0..300).map(move |i| format!("t{t}-{i}")))
        .chain(std::iter::once("shared".to_owned()))
        .map(|p| e.contact_history(&p).iter().filter(|c| &*c.offer == "loan").count())
        .sum();
    assert_eq!(loan_contacts, 50, "every budget unit is one reserved contact");
}

#[derive(Debug, Clone)]
enum Op {
    Decide { profile: u8, page: bool },
    Outcome { back: u8, reward: bool, dismissed: bool },
    Release { back: u8 },
    Wait { hours: u16 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, any::<bool>()).prop_map(|(profile, page)| Op::Decide { profile, page }),
        2 => (0u8..8, any::<bool>(), any::<bool>()).prop_map(|(back, reward, dismissed)| Op::Outcome { back, reward, dismissed }),
        1 => (0u8..8).prop_map(|back| Op::Release { back }),
        2 => (1u16..60).prop_map(|hours| Op::Wait { hours }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn no_sequence_of_operations_exceeds_a_cap_or_budget(ops in proptest::collection::vec(op(), 1..80)) {
        let caps = r#"{"scope": "all", "max": 4, "window": 604800},
                      {"scope": "channel", "channel": "email", "max": 1, "window": 86400},
                      {"scope": "offer", "max": 2, "window": 259200},
                      {"scope": "group", "group": "cards", "max": 1, "window": 172800}"#;
        let budget = r#", "budget": {"max": 5, "window": 86400, "counts": "impressions", "pacing": "none"}"#;
        let e = Engine::new(catalog(caps, budget), 9).simulated();
        let policy = e.current().catalog.contact.clone();
        let mut now = NOW;
        let mut decided: Vec<Decision> = Vec::new();
        for op in ops {
            match op {
                Op::Decide { profile, page } => {
                    let placements: &[&str] = if page { &["hero", "side", "mail"] } else { &["mail"] };
                    decided.extend(decide(&e, placements, Some(&format!("p{profile}")), now));
                }
                Op::Outcome { back, reward, dismissed } => {
                    if let Some(d) = decided.iter().rev().nth(usize::from(back)) && !d.offers.is_empty() {
                        let _ = e.report_outcome(d.decision_id, Some(&d.offers[0].offer_id), f64::from(u8::from(reward)), dismissed);
                    }
                }
                Op::Release { back } => {
                    if let Some(d) = decided.iter().rev().nth(usize::from(back)) {
                        let _ = e.release(d.decision_id);
                    }
                }
                Op::Wait { hours } => now += f64::from(hours) * 3600.0,
            }
            for profile in 0..3 {
                let history = e.contact_history(&format!("p{profile}"));
                let shown: Vec<_> = history.iter().filter(|c| c.kind == ContactKind::Shown).collect();
                for cap in &policy.caps {
                    for end in shown.iter().map(|c| c.time) {
                        let in_window = shown.iter().filter(|c| c.time <= end && end - c.time < cap.window);
                        let messages = |events: Vec<&&ContactEvent>| {
                            let mut ids: Vec<u64> = events.iter().map(|c| c.decision_id).collect();
                            ids.sort_unstable();
                            ids.dedup();
                            ids.len()
                        };
                        let count = match &cap.scope {
                            crate::contact::CapScope::All => messages(in_window.collect()),
                            crate::contact::CapScope::Channel(ch) => messages(in_window.filter(|c| &*c.channel == ch).collect()),
                            crate::contact::CapScope::Group(g) => in_window.filter(|c| c.group.as_deref() == Some(g)).count(),
                            crate::contact::CapScope::Offer => {
                                let mut per: Vec<&str> = in_window.map(|c| &*c.offer).collect();
                                per.sort_unstable();
                                per.chunk_by(|a, b| a == b).map(<[&str]>::len).max().unwrap_or(0)
                            }
                        };
                        prop_assert!(count <= cap.max as usize, "{} holds {count} > {}", cap.label(), cap.max);
                    }
                }
            }
            let (used, _) = e.budget_usage("loan", now).unwrap().unwrap();
            prop_assert!(used <= 5);
        }
    }
}

#[test]
fn fail_closed_caps_keep_out_what_they_govern_while_the_store_is_unreachable() {
    let ids = |c: &Catalog, placement: &str| -> Vec<String> {
        let p = c.placement_index(placement).unwrap();
        c.closed_without_store(p).into_iter().map(|o| c.offers[o].id.clone()).collect()
    };
    let group =
        r#"{"scope": "group", "group": "cards", "max": 1, "window": 86400, "when_store_unavailable": "closed"}"#;
    let channel =
        r#"{"scope": "channel", "channel": "email", "max": 1, "window": 86400, "when_store_unavailable": "closed"}"#;
    let open = r#"{"scope": "all", "max": 9, "window": 86400}"#;
    let c = catalog(&format!("{group}, {channel}, {open}"), "");
    assert_eq!(ids(&c, "hero"), ["card", "card_plus"], "the group's offers only");
    assert_eq!(ids(&c, "mail"), ["loan", "news"], "every offer on the capped channel");
    let all = catalog(r#"{"scope": "all", "max": 9, "window": 86400, "when_store_unavailable": "closed"}"#, "");
    assert_eq!(ids(&all, "side").len(), 4);
    assert!(ids(&catalog(open, ""), "hero").is_empty(), "open caps close nothing");
    let typo = r#"{"scope": "all", "max": 9, "window": 86400, "when_store_unavailable": "shut"}"#;
    let err = Catalog::from_json(&catalog_json(typo, "")).unwrap_err().to_string();
    assert!(err.contains("when_store_unavailable is 'open' or 'closed', got 'shut'"), "{err}");
}
