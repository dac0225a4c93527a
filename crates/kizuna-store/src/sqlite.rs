//! SQLite backend (see the crate docs).
