//! Everything that is state. Today: the customers' profiles (embedded backend). The
//! pending decisions, contact history and journal still live in `pending`, `contact` and
//! `durable`; they move here behind the same backends as the Redis store is ported to Rust.

pub mod profiles;

pub use profiles::{Layout, ProfileStore, StoredProfile, Value};
