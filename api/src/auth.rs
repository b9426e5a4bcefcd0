//! Bearer-token authentication and team scoping. With no tokens configured the API is open.
//! A token limited to teams sees only those teams' services: a service or team outside them, or
//! the whole organisation, is 403.

use axum::http::HeaderMap;
use doraflow_http::{HttpError, bearer_token, secrets_equal};
use doraflow_schemas::config::ApiToken;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Sees everything (open API or an unrestricted token).
    Everything,
    /// Sees only these teams.
    Teams(Vec<String>),
}

/// Checks the bearer token against the configured ones.
pub fn authenticate(tokens: &[ApiToken], headers: &HeaderMap) -> Result<Caller, HttpError> {
    if tokens.is_empty() {
        return Ok(Caller::Everything);
    }
    let given = bearer_token(headers).ok_or_else(|| {
        HttpError::unauthorized("missing_token", "send Authorization: Bearer <token>")
    })?;
    // Compare against every token, without stopping at the first match.
    let mut found: Option<&ApiToken> = None;
    for token in tokens {
        if secrets_equal(given.as_bytes(), token.token.as_bytes()) {
            found = Some(token);
        }
    }
    match found {
        None => Err(HttpError::unauthorized(
            "bad_token",
            "the bearer token is not valid",
        )),
        Some(ApiToken { teams: None, .. }) => Ok(Caller::Everything),
        Some(ApiToken {
            teams: Some(teams), ..
        }) => Ok(Caller::Teams(teams.clone())),
    }
}

impl Caller {
    /// May this caller see a team's figures?
    pub fn may_see_team(&self, team: Option<&str>) -> bool {
        match self {
            Caller::Everything => true,
            Caller::Teams(teams) => team.is_some_and(|t| teams.iter().any(|x| x == t)),
        }
    }

    /// May this caller see the whole organisation?
    pub fn may_see_organisation(&self) -> bool {
        matches!(self, Caller::Everything)
    }
}
