//! Contact policy (collision avoidance): frequency caps over sliding windows, cooldowns after
//! a conversion or dismissal, suppression of purchased products, volume budgets with pacing.
//! History is reserved at decision time and released if the decision is not shown, so
//! concurrent decisions never overshoot a cap or a budget.

mod budget;
mod check;
mod policy;

pub use crate::store::history::{ContactEvent, ContactKind, ContactStore, History};
pub use budget::{Budget, BudgetSpec, Counts};
pub use check::{ContactCheck, Exclusion, shown};
pub use policy::{CapScope, ContactPolicy, ContactPolicySpec};
