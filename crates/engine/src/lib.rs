//! Sandbar's engine: the one pipeline every call walks, whatever front it
//! came through.
//!
//! A front turns a protocol message into a [`Call`], hands it to
//! [`Run::handle`], and turns the [`Outcome`] back into a protocol message.
//! Everything in between — the virtual clock, routing to the stub, faults,
//! the stateful twin, templates, and recording every event through the
//! redacting store — lives here.
//!
//! Architecture invariants: the engine opens no socket; every event goes to
//! the store (which redacts it) and nowhere else; an outcome is returned
//! only after its events are durable.

#![forbid(unsafe_code)]

pub mod access;
mod call;
mod canary;
mod client;
mod forward;
mod gate;
mod listing;
mod matcher;
mod offer;
pub mod policy;
mod privacy;
mod render;
mod replay;
mod rng;
mod run;
mod stub;
mod transcript;
mod twin;
mod upstream;

pub use access::{AuthError, Principal, ScopeSpec};
pub use call::{Call, CompletionRef, Method, Outcome, ProtocolError};
pub use client::{Client, ClientError, DetachedClient, capability_for};
pub use render::RenderError;
pub use replay::NOT_RECORDED;
pub use rng::Stream;
pub use run::{DEFAULT_TENANT, Engine, EngineError, EngineOptions, Run, RunOptions, format_time};
pub use transcript::{
    ImportError, cassette_of_run, import_cassette, interactions, run_of_cassette,
};
pub use twin::{Changes, Table, Twin};
pub use upstream::{
    Catalog, Upstream, UpstreamError, UpstreamErrorKind, UpstreamRequest, UpstreamSession,
};
