//! Integration tests: every format on its real-format fixtures (`tests/fixtures/<format>/`),
//! with exact field checks, golden outputs (`*.expected`, refreshed with `UPDATE_EXPECT=1`) and
//! counts of observations, skips and rejects.

#![allow(clippy::unwrap_used)]

mod common;
mod cowrie;
mod csv;
mod intelmq;
mod robustness;
mod shadowserver;
mod suricata;
