use super::*;
use crate::contact::policy::{CapSpec, ContactPolicySpec};

fn policy() -> ContactPolicy {
    let cap = |scope: &str, channel: Option<&str>, group: Option<&str>, max, window| CapSpec {
        scope: scope.into(),
        channel: channel.map(Into::into),
        group: group.map(Into::into),
        max,
        window,
        when_store_unavailable: None,
    };
    let spec = ContactPolicySpec {
        caps: vec![
            cap("channel", Some("email"), None, 1, 86_400.0),
            cap("all", None, None, 3, 7.0 * 86_400.0),
            cap("offer", None, None, 2, 7.0 * 86_400.0),
            cap("group", None, Some("cards"), 1, 30.0 * 86_400.0),
        ],
        cooldown_after_conversion: Some(14.0 * 86_400.0),
        cooldown_after_dismissal: Some(3.0 * 86_400.0),
        suppress_purchased: true,
        max_per_group: None,
    };
    ContactPolicy::compile(spec, &["web".into(), "email".into()], &["cards".into()]).unwrap()
}

fn event(days_ago: f64, offer: &str, channel: &str, group: Option<&str>, kind: ContactKind) -> ContactEvent {
    ContactEvent {
        time: NOW - days_ago * 86_400.0,
        offer: offer.into(),
        channel: channel.into(),
        group: group.map(Into::into),
        kind,
        decision_id: 0,
    }
}

const NOW: f64 = 100.0 * 86_400.0;

#[test]
fn each_rule_excludes_exactly_what_it_should() {
    let p = policy();
    let history = [
        event(0.5, "news", "email", None, ContactKind::Shown),
        event(10.0, "loan", "web", None, ContactKind::Converted),
        event(1.0, "tips", "web", None, ContactKind::Dismissed),
        event(2.0, "gold", "web", Some("cards"), ContactKind::Shown),
    ];
    let web = ContactCheck::new(&p, NOW, "web", history.iter(), &["mortgage"]);
    let email = ContactCheck::new(&p, NOW, "email", history.iter(), &[]);

    assert!(
        matches!(email.exclusion("news2", None, None), Some(Exclusion::Cap { ref cap, count: 1, max: 1, .. }) if cap == "channel 'email' cap")
    );
    assert_eq!(web.exclusion("news2", None, None), None, "the email cap does not apply on web");
    assert!(matches!(
        web.exclusion("loan", None, None),
        Some(Exclusion::Cooldown { after: ContactKind::Converted, .. })
    ));
    assert!(matches!(
        web.exclusion("tips", None, None),
        Some(Exclusion::Cooldown { after: ContactKind::Dismissed, .. })
    ));
    assert!(
        matches!(web.exclusion("platinum", Some("cards"), None), Some(Exclusion::Cap { ref cap, .. }) if cap == "group 'cards' cap")
    );
    assert_eq!(web.exclusion("platinum", Some("other"), None), None);
    assert_eq!(
        web.exclusion("home", None, Some("mortgage")),
        Some(Exclusion::Purchased { product: "mortgage".into() })
    );
}

#[test]
fn windows_slide() {
    let p = policy();
    let old = [
        event(1.5, "news", "email", None, ContactKind::Shown),
        event(20.0, "loan", "web", None, ContactKind::Converted),
    ];
    let check = ContactCheck::new(&p, NOW, "email", old.iter(), &[]);
    assert_eq!(check.exclusion("news", None, None), None, "a day and a half ago is outside the 1-day email window");
    assert_eq!(check.exclusion("loan", None, None), None, "the 14-day cooldown is over");
}

#[test]
fn all_channel_and_per_offer_caps_count_shown_contacts() {
    let p = policy();
    let three = [
        event(1.0, "a", "web", None, ContactKind::Shown),
        event(2.0, "a", "web", None, ContactKind::Shown),
        event(3.0, "b", "web", None, ContactKind::Shown),
    ];
    let check = ContactCheck::new(&p, NOW, "web", three.iter(), &[]);
    assert!(
        matches!(check.exclusion("c", None, None), Some(Exclusion::Cap { count: 3, max: 3, ref cap, .. }) if cap == "all-channel cap")
    );
    let two = &three[..2];
    let check = ContactCheck::new(&p, NOW, "web", two.iter(), &[]);
    assert!(
        matches!(check.exclusion("a", None, None), Some(Exclusion::Cap { count: 2, max: 2, ref cap, .. }) if cap == "per-offer cap")
    );
    assert_eq!(check.exclusion("b", None, None), None);
}
