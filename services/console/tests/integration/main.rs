//! The console's tests: the service built by the composition root on port 0, and pages in a headless Chromium.

#[macro_use]
mod common;
mod alerts;
mod browser;
mod login;
