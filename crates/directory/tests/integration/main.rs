//! The directory's tests: loading, queries, changes and history.

mod changes;
mod history;
mod load;
mod queries;
