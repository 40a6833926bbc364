//! The catalog as the engine uses it: deserialised from the validated JSON the Python
//! loader produces, cross-checked, with every rule compiled once.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::contact::{BudgetSpec, ContactPolicy, ContactPolicySpec};
use crate::customer::{ComputedSpec, CustomerRules, DefaultSpec, EventSpec, ProfilesSpec};
use crate::error::{Location, Result, catalog_error};
use crate::experiment::{Experiment, ExperimentSpec};
use crate::policy::PolicyConfig;
use crate::rules::RuleSet;
use crate::schema::{Feature, FeatureKind, Schema};
use crate::triggers::{TriggerSet, TriggerSpec};

#[derive(Debug, Deserialize)]
pub struct CatalogSpec {
    pub features: Vec<FeatureSpec>,
    pub channels: Vec<ChannelSpec>,
    pub placements: Vec<PlacementSpec>,
    pub offers: Vec<OfferSpec>,
    #[serde(default)]
    pub contact_policy: Option<ContactPolicySpec>,
    #[serde(default)]
    pub experiments: Option<Vec<ExperimentSpec>>,
    #[serde(default)]
    pub events: Option<Vec<EventSpec>>,
    #[serde(default)]
    pub profiles: Option<ProfilesSpec>,
    #[serde(default)]
    pub triggers: Option<Vec<TriggerSpec>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FeatureSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub values: Option<Vec<String>>,
    #[serde(default)]
    pub default: Option<DefaultSpec>,
    #[serde(default)]
    pub computed: Option<ComputedSpec>,
}

/// A channel: its name, or `{id, consent}` where `consent` says whether a profile must have
/// consented to the channel before anything is sent on it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ChannelSpec {
    Name(String),
    Declared {
        id: String,
        #[serde(default)]
        consent: Option<ChannelConsent>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelConsent {
    Required,
    NotRequired,
}

/// Channels that reach a customer unasked (outbound): a placement on one of them decides
/// nothing for a profile without that channel's consent, unless the catalog declares
/// `consent: not_required`. Other channels need it only when declared `consent: required`.
pub const OUTBOUND_CHANNELS: &[&str] =
    &["email", "push", "sms", "mms", "whatsapp", "rcs", "direct_mail", "mail", "letter", "call", "voice"];

impl ChannelSpec {
    fn id(&self) -> &str {
        match self {
            Self::Name(id) | Self::Declared { id, .. } => id,
        }
    }

    fn consent_required(&self) -> bool {
        match self {
            Self::Declared { consent: Some(c), .. } => *c == ChannelConsent::Required,
            _ => OUTBOUND_CHANNELS.contains(&self.id()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PlacementSpec {
    pub id: String,
    pub channel: String,
    pub slots: u32,
    pub policy: PolicyConfig,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Deserialize)]
pub struct OfferSpec {
    pub id: String,
    pub placements: Vec<String>,
    #[serde(default = "one")]
    pub value: f64,
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub consent: Option<String>,
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub active_from: Option<f64>,
    #[serde(default)]
    pub active_to: Option<f64>,
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
    /// What the offer is, for a shared contextual model (`shared: true`): numbers, or
    /// names (one-hot), by attribute.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone)]
pub struct Offer {
    pub id: String,
    pub value: f64,
    pub weight: f64,
    pub rule: Option<String>,
    pub group: Option<usize>,
    /// Channel index whose consent the profile must have.
    pub consent: Option<usize>,
    pub product: Option<String>,
    pub active_from: f64,
    pub active_to: f64,
    pub budget: Option<BudgetSpec>,
    pub attributes: BTreeMap<String, AttributeValue>,
}

impl Offer {
    pub fn is_active(&self, now: f64) -> bool {
        self.active_from <= now && now < self.active_to
    }
}

#[derive(Debug, Clone)]
pub struct Placement {
    pub id: String,
    pub channel: usize,
    pub slots: usize,
    pub policy: PolicyConfig,
    /// Catalog indices of the offers that may appear here, in catalog order.
    pub offers: Vec<usize>,
    /// The rules of `offers`, in the same order.
    pub rules: RuleSet,
}

#[derive(Debug)]
pub struct Catalog {
    pub schema: Schema,
    pub channels: Vec<String>,
    /// Per channel: must a profile have consented to it before a placement on it decides?
    pub consent_required: Vec<bool>,
    pub groups: Vec<String>,
    pub offers: Vec<Offer>,
    pub placements: Vec<Placement>,
    /// Every offer's rule, in catalog order, for eligibility over a whole batch.
    pub rules: RuleSet,
    pub contact: ContactPolicy,
    pub experiments: Vec<Experiment>,
    /// Defaults, computed attributes, event effects and the profile store's bounds.
    pub customers: CustomerRules,
    pub triggers: TriggerSet,
    offer_index: HashMap<String, usize>,
    placement_index: HashMap<String, usize>,
}

impl Catalog {
    pub fn from_json(json: &str) -> Result<Self> {
        let spec: CatalogSpec = serde_json::from_str(json)
            .map_err(|e| catalog_error(Location::Catalog, format!("catalog JSON does not match the schema: {e}")))?;
        Self::compile(spec)
    }

    pub fn compile(spec: CatalogSpec) -> Result<Self> {
        use crate::limits::{MAX_EXPERIMENTS, MAX_FEATURES, MAX_OFFERS, MAX_PLACEMENTS};
        let sizes = [
            ("offers", spec.offers.len(), MAX_OFFERS),
            ("placements", spec.placements.len(), MAX_PLACEMENTS),
            ("features", spec.features.len(), MAX_FEATURES),
            ("experiments", spec.experiments.as_ref().map_or(0, Vec::len), MAX_EXPERIMENTS),
        ];
        for (what, n, max) in sizes {
            if n > max {
                return Err(catalog_error(Location::Catalog, format!("{n} {what}; a catalog may have at most {max}")));
            }
        }
        let defaults: Vec<Option<DefaultSpec>> = spec.features.iter().map(|f| f.default.clone()).collect();
        let computed: Vec<Option<ComputedSpec>> = spec.features.iter().map(|f| f.computed.clone()).collect();
        let schema = Schema::new(spec.features.into_iter().map(feature).collect::<Result<_>>()?)?;
        let consent_required = spec.channels.iter().map(ChannelSpec::consent_required).collect();
        let channels: Vec<String> = spec.channels.iter().map(|c| c.id().to_owned()).collect();
        let channel_index = index_by(&channels, |c| c.as_str(), Location::Channel)?;
        if channels.len() > 64 {
            return Err(catalog_error(Location::Catalog, "at most 64 channels are supported"));
        }
        let customers = CustomerRules::compile(
            &schema,
            &defaults,
            &computed,
            spec.events.as_deref().unwrap_or_default(),
            &spec.profiles.unwrap_or_default(),
            &channel_index,
        )?;

        let mut groups: Vec<String> = Vec::new();
        let mut offers = Vec::with_capacity(spec.offers.len());
        for o in &spec.offers {
            offers.push(offer(o, &channel_index, &mut groups)?);
        }
        let offer_index = index_by(&offers, |o| o.id.as_str(), Location::Offer)?;
        let rules =
            RuleSet::compile(&schema, offers.iter().map(|o| (Location::Offer(o.id.clone()), o.rule.as_deref())))?;

        let mut members: Vec<Vec<usize>> = vec![Vec::new(); spec.placements.len()];
        let placement_ids: Vec<String> = spec.placements.iter().map(|p| p.id.clone()).collect();
        let placement_index = index_by(&placement_ids, |p| p.as_str(), Location::Placement)?;
        for (o, offer_spec) in spec.offers.iter().enumerate() {
            if offer_spec.placements.is_empty() {
                return Err(catalog_error(
                    Location::Offer(offer_spec.id.clone()),
                    "an offer needs at least one placement",
                ));
            }
            for p in &offer_spec.placements {
                let Some(&pi) = placement_index.get(p) else {
                    return Err(catalog_error(
                        Location::Offer(offer_spec.id.clone()),
                        format!("unknown placement '{p}'"),
                    ));
                };
                if !members[pi].contains(&o) {
                    members[pi].push(o);
                }
            }
        }

        let placements: Vec<Placement> = spec
            .placements
            .into_iter()
            .zip(members)
            .map(|(p, members)| placement(p, members, &channel_index, &schema, &offers))
            .collect::<Result<_>>()?;
        let contact = ContactPolicy::compile(spec.contact_policy.unwrap_or_default(), &channels, &groups)?;
        let experiments =
            crate::experiment::compile(spec.experiments.unwrap_or_default(), |id| placement_index.get(id).copied())?;
        for experiment in &experiments {
            for group in &experiment.groups {
                if let Some(policy) = &group.policy {
                    let at = || format!("experiment '{}' group '{}'", experiment.id, group.name);
                    check_policy_features(policy, &schema)
                        .map_err(|detail| catalog_error(Location::Catalog, format!("{}: {detail}", at())))?;
                    for p in (0..placements.len()).filter(|&p| experiment.applies_to(p)) {
                        let offered: Vec<&Offer> = placements[p].offers.iter().map(|&o| &offers[o]).collect();
                        check_shared(policy, &schema, &offered)
                            .map_err(|detail| catalog_error(Location::Catalog, format!("{}: {detail}", at())))?;
                    }
                }
            }
        }
        let triggers = TriggerSet::compile(spec.triggers.unwrap_or_default(), &schema, &placement_index, feature)?;
        Ok(Self {
            triggers,
            schema,
            channels,
            consent_required,
            groups,
            offers,
            placements,
            rules,
            contact,
            experiments,
            customers,
            offer_index,
            placement_index,
        })
    }

    pub fn placement_index(&self, id: &str) -> Option<usize> {
        self.placement_index.get(id).copied()
    }

    /// Offers of a placement that a fail-closed cap keeps out while the shared store cannot
    /// be reached: all of them under an offer or all-channel cap, those of the cap's group,
    /// or every one when the cap is on the placement's channel.
    pub fn closed_without_store(&self, placement: usize) -> Vec<usize> {
        use crate::contact::CapScope;
        let p = &self.placements[placement];
        let channel = &self.channels[p.channel];
        let closed = |offer: usize| {
            self.contact.caps.iter().filter(|cap| cap.fails_closed).any(|cap| match &cap.scope {
                CapScope::Offer | CapScope::All => true,
                CapScope::Channel(c) => c == channel,
                CapScope::Group(g) => self.offers[offer].group.is_some_and(|i| &self.groups[i] == g),
            })
        };
        p.offers.iter().copied().filter(|&o| closed(o)).collect()
    }

    pub fn offer_index(&self, id: &str) -> Option<usize> {
        self.offer_index.get(id).copied()
    }

    pub fn channel_index(&self, name: &str) -> Option<usize> {
        self.channels.iter().position(|c| c == name)
    }
}

fn index_by<T>(
    items: &[T],
    key: impl Fn(&T) -> &str,
    location: fn(String) -> Location,
) -> Result<HashMap<String, usize>> {
    let mut index = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let k = key(item);
        if index.insert(k.to_owned(), i).is_some() {
            return Err(catalog_error(location(k.to_owned()), "duplicate id"));
        }
    }
    Ok(index)
}

fn feature(spec: FeatureSpec) -> Result<Feature> {
    let at = || Location::Feature(spec.name.clone());
    let kind = match (spec.kind.as_str(), &spec.values) {
        ("float", None) => FeatureKind::Float,
        ("int", None) => FeatureKind::Int,
        ("bool", None) => FeatureKind::Bool,
        ("category", Some(values)) => FeatureKind::Category(values.clone()),
        ("category", None) => return Err(catalog_error(at(), "a category needs values")),
        ("float" | "int" | "bool", Some(_)) => {
            return Err(catalog_error(at(), "only a category has values"));
        }
        (other, _) => {
            return Err(catalog_error(at(), format!("unknown type '{other}'; use float, int, bool or category")));
        }
    };
    Ok(Feature { name: spec.name, kind })
}

fn offer(spec: &OfferSpec, channels: &HashMap<String, usize>, groups: &mut Vec<String>) -> Result<Offer> {
    let at = || Location::Offer(spec.id.clone());
    if !(spec.value.is_finite() && spec.value >= 0.0 && spec.weight.is_finite() && spec.weight >= 0.0) {
        return Err(catalog_error(at(), "value and weight must be finite and >= 0"));
    }
    let consent = match &spec.consent {
        Some(c) => {
            Some(*channels.get(c).ok_or_else(|| catalog_error(at(), format!("consent names unknown channel '{c}'")))?)
        }
        None => None,
    };
    let group = spec.group.as_ref().map(|g| match groups.iter().position(|x| x == g) {
        Some(i) => i,
        None => {
            groups.push(g.clone());
            groups.len() - 1
        }
    });
    if let Some(b) = &spec.budget
        && (b.max == 0 || !(b.window.is_finite() && b.window > 0.0))
    {
        return Err(catalog_error(at(), "a budget needs max >= 1 and a positive window"));
    }
    let active_from = spec.active_from.unwrap_or(f64::NEG_INFINITY);
    let active_to = spec.active_to.unwrap_or(f64::INFINITY);
    if active_from >= active_to {
        return Err(catalog_error(at(), "active_to must be after active_from"));
    }
    Ok(Offer {
        id: spec.id.clone(),
        value: spec.value,
        weight: spec.weight,
        rule: spec.rule.clone(),
        group,
        consent,
        product: spec.product.clone(),
        active_from,
        active_to,
        budget: spec.budget.clone(),
        attributes: spec.attributes.clone(),
    })
}

/// The coordinates of a placement's offers for a shared model: a bias, then per attribute
/// (sorted by name) its number, or one column per name it takes. Returns the coordinate
/// names (the layout a saved model must match) and each offer's vector.
pub(crate) fn offer_coordinates(offers: &[&Offer]) -> std::result::Result<(Vec<String>, Vec<Vec<f32>>), String> {
    let mut columns: BTreeMap<&str, Option<std::collections::BTreeSet<&str>>> = BTreeMap::new();
    for offer in offers {
        for (name, value) in &offer.attributes {
            let entry = columns.entry(name.as_str()).or_insert_with(|| match value {
                AttributeValue::Number(_) => None,
                AttributeValue::Text(_) => Some(Default::default()),
            });
            match (entry, value) {
                (None, AttributeValue::Number(v)) if v.is_finite() => {}
                (Some(names), AttributeValue::Text(t)) => {
                    names.insert(t.as_str());
                }
                _ => {
                    return Err(format!(
                        "offer '{}' attribute '{name}': every offer of a placement gives it as a finite number or every one as a name",
                        offer.id
                    ));
                }
            }
        }
    }
    let mut layout = vec!["bias".to_owned()];
    for (name, names) in &columns {
        match names {
            None => layout.push((*name).to_owned()),
            Some(names) => layout.extend(names.iter().map(|v| format!("{name}={v}"))),
        }
    }
    let vectors = offers
        .iter()
        .map(|offer| {
            let mut v = vec![1.0f32];
            for (name, names) in &columns {
                match (names, offer.attributes.get(*name)) {
                    (None, Some(AttributeValue::Number(x))) => v.push(*x as f32),
                    (None, _) => v.push(0.0),
                    (Some(names), value) => {
                        v.extend(
                            names.iter().map(|n| f32::from(matches!(value, Some(AttributeValue::Text(t)) if t == n))),
                        );
                    }
                }
            }
            v
        })
        .collect();
    Ok((layout, vectors))
}

/// A shared policy on a placement: its offers' coordinates times the profile's stay within
/// [`crate::limits::MAX_POLICY_COORDINATES`].
fn check_shared(policy: &PolicyConfig, schema: &Schema, offers: &[&Offer]) -> std::result::Result<(), String> {
    if !policy.shared {
        return Ok(());
    }
    let (layout, _) = offer_coordinates(offers)?;
    let profile = crate::policy::Model::context_coords(&policy_context(policy, schema));
    let coords = profile * layout.len();
    if coords > crate::limits::MAX_POLICY_COORDINATES {
        return Err(format!(
            "shared policy {} reads {profile} profile coordinates x {} offer coordinates = {coords}; at most {}",
            policy.name(),
            layout.len(),
            crate::limits::MAX_POLICY_COORDINATES
        ));
    }
    Ok(())
}

/// Every rule error of `rules` ((offer id, rule text) pairs) against the feature schema in
/// `features_json`, each rule compiled on its own: a loader reports them all at once, even
/// when another part of the catalog does not validate.
pub fn check_rules(features_json: &str, rules: &[(String, String)]) -> Result<Vec<crate::Error>> {
    let specs: Vec<FeatureSpec> = serde_json::from_str(features_json)
        .map_err(|e| catalog_error(Location::Catalog, format!("features JSON does not match the schema: {e}")))?;
    let schema = Schema::new(specs.into_iter().map(feature).collect::<Result<_>>()?)?;
    Ok(rules
        .iter()
        .filter_map(|(offer, text)| {
            RuleSet::compile(&schema, [(Location::Offer(offer.clone()), Some(text.as_str()))]).err()
        })
        .collect())
}

/// A contextual policy's `features` must name features of the schema, its `interactions`
/// features it reads, and its context stay within [`crate::limits::MAX_POLICY_COORDINATES`].
pub(crate) fn check_policy_features(policy: &PolicyConfig, schema: &Schema) -> std::result::Result<(), String> {
    for name in policy.features.iter().flatten() {
        if schema.index_of(name).is_none() {
            return Err(format!("policy {} reads unknown feature '{name}'", policy.name()));
        }
    }
    let read = |name: &str| match &policy.features {
        Some(names) => names.iter().any(|n| n == name),
        None => schema.index_of(name).is_some(),
    };
    for pair in policy.interactions.iter().flatten() {
        if let Some(name) = pair.iter().find(|n| !read(n)) {
            return Err(format!(
                "policy {} interaction {pair:?} names '{name}', which it does not read",
                policy.name()
            ));
        }
    }
    if policy.is_contextual() {
        let coords = crate::policy::Model::context_coords(&policy_context(policy, schema));
        if coords > crate::limits::MAX_POLICY_COORDINATES {
            return Err(format!(
                "policy {} reads {coords} coordinates (a bias, one per number or flag, one per category value, and its interactions); at most {}",
                policy.name(),
                crate::limits::MAX_POLICY_COORDINATES
            ));
        }
    }
    Ok(())
}

/// The schema columns a contextual policy reads, in order: its named features, or all.
pub(crate) fn policy_columns(policy: &PolicyConfig, schema: &Schema) -> Vec<usize> {
    if !policy.is_contextual() {
        return Vec::new();
    }
    match &policy.features {
        Some(names) => names.iter().filter_map(|n| schema.index_of(n)).collect(),
        None => (0..schema.len()).collect(),
    }
}

/// How a contextual policy's columns enter its model: numbers standardized, flags as they
/// are, categories one-hot, and its declared interactions.
pub(crate) fn policy_context(policy: &PolicyConfig, schema: &Schema) -> crate::policy::ContextSpec {
    use crate::policy::ColumnKind;
    let columns = policy_columns(policy, schema);
    let kinds = columns
        .iter()
        .map(|&c| match &schema.features()[c].kind {
            FeatureKind::Float | FeatureKind::Int => ColumnKind::Numeric,
            FeatureKind::Bool => ColumnKind::Flag,
            FeatureKind::Category(values) => ColumnKind::Category(values.len()),
        })
        .collect();
    let position = |name: &String| columns.iter().position(|&c| schema.index_of(name) == Some(c));
    let interactions =
        policy.interactions.iter().flatten().filter_map(|[a, b]| Some((position(a)?, position(b)?))).collect();
    crate::policy::ContextSpec { columns: kinds, interactions }
}

fn placement(
    spec: PlacementSpec,
    members: Vec<usize>,
    channels: &HashMap<String, usize>,
    schema: &Schema,
    offers: &[Offer],
) -> Result<Placement> {
    let at = || Location::Placement(spec.id.clone());
    let channel = *channels
        .get(&spec.channel)
        .ok_or_else(|| catalog_error(at(), format!("unknown channel '{}'", spec.channel)))?;
    if spec.slots == 0 {
        return Err(catalog_error(at(), "slots must be at least 1"));
    }
    spec.policy.validate().map_err(|e| catalog_error(at(), e.message))?;
    check_policy_features(&spec.policy, schema).map_err(|detail| catalog_error(at(), detail))?;
    let offered: Vec<&Offer> = members.iter().map(|&o| &offers[o]).collect();
    check_shared(&spec.policy, schema, &offered).map_err(|detail| catalog_error(at(), detail))?;
    let rules = RuleSet::compile(
        schema,
        members.iter().map(|&o| (Location::Offer(offers[o].id.clone()), offers[o].rule.as_deref())),
    )?;
    Ok(Placement { id: spec.id, channel, slots: spec.slots as usize, policy: spec.policy, offers: members, rules })
}
