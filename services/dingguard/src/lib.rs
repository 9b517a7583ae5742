//! The dingguard application: its settings and the composition root that builds its services from them. The
//! `dingguard` command, the test kits and the bench all build through [`app::build`].

pub mod api_doc;
pub mod app;
pub mod config;
