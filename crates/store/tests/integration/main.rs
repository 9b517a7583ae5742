//! The store's tests, each on a SQLite file and on a fresh PostgreSQL database.

#[macro_use]
mod common;
mod console;
mod store;
