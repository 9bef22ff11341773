//! (to be written)

use super::{Deltas, Endpoint, LlmError, Request};

pub(super) async fn stream(
    _http: &reqwest::Client,
    _endpoint: &Endpoint,
    _request: &Request,
) -> Result<Deltas, LlmError> {
    todo!()
}

pub(super) async fn models(
    _http: &reqwest::Client,
    _endpoint: &Endpoint,
) -> Result<Vec<String>, LlmError> {
    todo!()
}
