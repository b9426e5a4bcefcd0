//! The metrics API: `/api/v1/dora` and the catalog views, answered from the fact store, with
//! bearer-token authentication and team scoping; `/healthz` and `/readyz`.

pub mod auth;
pub mod drilldown;
pub mod openapi;
pub mod params;
pub mod routes;

pub use routes::{ApiState, router};
