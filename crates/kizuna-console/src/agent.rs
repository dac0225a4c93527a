//! The ISP agent's console (placeholder module; see the crate docs).
