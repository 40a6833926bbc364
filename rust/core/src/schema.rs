//! The feature schema: named features laid out, in order, into one float32 vector.

use std::collections::HashMap;

use crate::error::{Error, Location, Result, catalog_error};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum FeatureKind {
    Float,
    Int,
    Bool,
    /// Stored as the value's code `0..values.len()`.
    Category(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Feature {
    pub name: String,
    pub kind: FeatureKind,
}

#[derive(Debug, Clone)]
pub struct Schema {
    features: Vec<Feature>,
    by_name: HashMap<String, usize>,
    /// Per feature: lowest and highest valid value, and whether it must be whole (1.0) or
    /// not (0.0), as separate arrays so checking a batch is a branch-free, vectorised pass;
    /// the slow, explaining check runs only on a bad row.
    low: Vec<f32>,
    high: Vec<f32>,
    whole: Vec<f32>,
}

impl Schema {
    pub fn new(features: Vec<Feature>) -> Result<Self> {
        let mut by_name = HashMap::with_capacity(features.len());
        for (index, feature) in features.iter().enumerate() {
            if by_name.insert(feature.name.clone(), index).is_some() {
                return Err(catalog_error(Location::Feature(feature.name.clone()), "duplicate feature name"));
            }
            if let FeatureKind::Category(values) = &feature.kind
                && values.is_empty()
            {
                return Err(catalog_error(Location::Feature(feature.name.clone()), "a category needs values"));
            }
        }
        let limit = |f: &Feature| match &f.kind {
            FeatureKind::Float => (f32::MIN, f32::MAX, 0.0),
            FeatureKind::Int => (f32::MIN, f32::MAX, 1.0),
            FeatureKind::Bool => (0.0, 1.0, 1.0),
            FeatureKind::Category(values) => (0.0, (values.len() - 1) as f32, 1.0),
        };
        let low = features.iter().map(|f| limit(f).0).collect();
        let high = features.iter().map(|f| limit(f).1).collect();
        let whole = features.iter().map(|f| limit(f).2).collect();
        Ok(Self { features, by_name, low, high, whole })
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Checks rows of a batch (row-major); the first bad row's error says what is wrong.
    pub fn check_rows(&self, rows: &[f32], first_row: usize) -> Result<()> {
        let dim = self.features.len();
        let (low, high, whole) = (&self.low[..dim], &self.high[..dim], &self.whole[..dim]);
        let mut bad = 0u32;
        for row in rows.chunks_exact(dim) {
            for i in 0..dim {
                let v = row[i];
                // NaN fails both comparisons; infinities fail the range. A fraction matters only
                // where `whole` is 1.
                let fraction = (v - (v as i32) as f32).abs() * whole[i];
                let in_range = v >= low[i] && v <= high[i] && (fraction == 0.0 || v.abs() >= 16_777_216.0);
                bad |= u32::from(!in_range);
            }
        }
        let ok = bad == 0;
        if ok {
            return Ok(());
        }
        rows.chunks_exact(dim).enumerate().try_for_each(|(r, row)| self.check_row(row, Some(first_row + r)))
    }

    /// Checks one profile's vector: finite, whole numbers for ints, 0/1 for bools, known category codes.
    pub fn check_row(&self, row: &[f32], row_index: Option<usize>) -> Result<()> {
        if row.len() != self.features.len() {
            return Err(Error::InvalidInput(format!("expected {} features, got {}", self.features.len(), row.len())));
        }
        for (value, feature) in row.iter().zip(&self.features) {
            if let Some(problem) = feature.value_problem(*value) {
                let at = row_index.map(|r| format!(" in row {r}")).unwrap_or_default();
                return Err(Error::InvalidInput(format!("feature '{}'{at}: {problem}", feature.name)));
            }
        }
        Ok(())
    }
}

impl Feature {
    fn value_problem(&self, value: f32) -> Option<String> {
        if !value.is_finite() {
            return Some(format!("{value} is not a finite number"));
        }
        if value.abs() > crate::limits::MAX_FEATURE_MAGNITUDE {
            return Some(format!("{value:e} is beyond the limit of +-{:e}", crate::limits::MAX_FEATURE_MAGNITUDE));
        }
        match &self.kind {
            FeatureKind::Float => None,
            FeatureKind::Int if value.fract() != 0.0 => Some(format!("{value} is not a whole number")),
            FeatureKind::Bool if value != 0.0 && value != 1.0 => Some(format!("{value} is not 0 or 1")),
            FeatureKind::Category(values) if value.fract() != 0.0 || value < 0.0 || value >= values.len() as f32 => {
                Some(format!("{value} is not a category code 0..{}", values.len() - 1))
            }
            _ => None,
        }
    }

    /// Encodes a category value name into its code.
    pub fn category_code(&self, value: &str) -> Option<f32> {
        match &self.kind {
            FeatureKind::Category(values) => values.iter().position(|v| v == value).map(|i| i as f32),
            _ => None,
        }
    }
}

/// A feature value given by name (the wire and dict forms of a profile).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NamedValue<'a> {
    Number(f64),
    Flag(bool),
    Category(&'a str),
}

impl std::fmt::Display for NamedValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "the number {n}"),
            Self::Flag(b) => write!(f, "the flag {b}"),
            Self::Category(c) => write!(f, "the category value '{c}'"),
        }
    }
}

impl Schema {
    /// One feature's value in the vector's encoding: numbers for int and float features,
    /// flags (or 0 and 1) for bools, value names for categories, each checked like a vector's entry.
    pub fn encode_value(&self, index: usize, value: NamedValue<'_>) -> Result<f32> {
        let feature = &self.features[index];
        let name = &feature.name;
        let encoded = match (&feature.kind, value) {
            (FeatureKind::Float | FeatureKind::Int, NamedValue::Number(n)) => n as f32,
            (FeatureKind::Bool, NamedValue::Flag(b)) => f32::from(u8::from(b)),
            // 0 and 1 as numbers too, as in a feature vector and in profile writes
            (FeatureKind::Bool, NamedValue::Number(n)) if n == 0.0 || n == 1.0 => n as f32,
            (FeatureKind::Category(values), NamedValue::Category(v)) => feature.category_code(v).ok_or_else(|| {
                Error::InvalidInput(format!("feature '{name}' must be one of {}, got '{v}'", values.join(", ")))
            })?,
            (kind, value) => {
                let expected = match kind {
                    FeatureKind::Float | FeatureKind::Int => "a number",
                    FeatureKind::Bool => "a flag (bool)",
                    FeatureKind::Category(_) => "a category value name",
                };
                return Err(Error::InvalidInput(format!("feature '{name}' takes {expected}, got {value}")));
            }
        };
        match feature.value_problem(encoded) {
            Some(problem) => Err(Error::InvalidInput(format!("feature '{name}': {problem}"))),
            None => Ok(encoded),
        }
    }

    /// Lays out a profile given by feature name into the vector; every feature must be given.
    pub fn encode_named<'a>(&self, values: impl IntoIterator<Item = (&'a str, NamedValue<'a>)>) -> Result<Vec<f32>> {
        let mut row = vec![f32::NAN; self.features.len()];
        let mut given = vec![false; self.features.len()];
        for (name, value) in values {
            let index = self.index_of(name).ok_or_else(|| Error::InvalidInput(format!("unknown feature '{name}'")))?;
            row[index] = self.encode_value(index, value)?;
            given[index] = true;
        }
        let missing: Vec<&str> =
            self.features.iter().zip(&given).filter(|(_, g)| !**g).map(|(f, _)| f.name.as_str()).collect();
        if !missing.is_empty() {
            return Err(Error::InvalidInput(format!("missing features: {}", missing.join(", "))));
        }
        Ok(row)
    }
}
