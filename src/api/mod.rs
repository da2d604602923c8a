//! The Oura API v2 client: authentication, the shared rate limiter, retries
//! and error classification. No SQL here: the limiter's shared request
//! account is `store::RequestLog`.

pub mod auth;
pub mod client;
pub mod error;
pub mod limiter;
pub mod oauth;

pub use client::{Client, DocumentsPage, PageQuery, RateLimitWait, WaitPolicy};
pub use error::ApiError;
pub use limiter::Limiter;
