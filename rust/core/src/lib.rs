//! decision-engine core: eligibility rules, bandit policies and arbitration over profile
//! feature vectors. Plain Rust, no Python; the `decision-engine-py` crate binds it.

pub mod allocate;
pub mod arbitrate;
pub mod bandit;
pub mod catalog;
pub mod contact;
pub mod customer;
pub mod engine;
pub mod error;
pub mod experiment;
pub mod limits;
pub mod policy;
pub mod rules;
pub mod schema;
pub mod store;
pub mod triggers;

pub use catalog::Catalog;
pub use engine::{BatchDecision, BatchRequest, BudgetPrice, ChosenOffer, DecideRequest, Decision, Engine, Reason};
pub use error::{Error, Location, Result, RulePosition};
