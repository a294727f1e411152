//! CP-IS, Child Protection – Information Sharing: the domain model, the NHS number and its
//! checks, the business rules, and the HTTP API of the four Spin components, written against a
//! small key-value abstraction ([`store::KeyValue`]) so that all of it runs and is tested
//! natively. Nothing here depends on Spin.

pub mod access;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod fhir;
pub mod identifiers;
pub mod keys;
pub mod log;
pub mod nhs_number;
pub mod plan;
pub mod records;
pub mod store;
pub mod submit;
pub mod tally;
pub mod worktray;
