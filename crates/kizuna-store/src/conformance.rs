//! Conformance battery every backend must pass.
