//! Every outbound Oura call: the API v2 client (authentication, the shared
//! rate limiter, retries, error classification), OAuth token calls and the
//! webhook subscription API, all on one HTTP setup (`http`). No SQL here:
//! the limiter's shared request account is `store::RequestLog`.

pub mod auth;
pub mod client;
pub mod error;
pub mod http;
pub mod in_flight;
pub mod limiter;
pub mod oauth;
pub mod subscriptions;
pub mod text;

pub use client::{Client, DocumentsPage, PageQuery, RateLimitWait, WaitPolicy};
pub use error::ApiError;
pub use in_flight::InFlight;
pub use limiter::Limiter;
pub use subscriptions::{Operation, Subscription, SubscriptionError, WebhookApi};
