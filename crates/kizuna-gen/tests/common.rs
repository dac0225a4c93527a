//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::OnceLock;

use kizuna_gen::{IpNet, RoutingSpec, World, world};

/// One small world shared by the tests of a binary.
pub fn small_world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| world(&RoutingSpec::small(42)))
}

/// Longest-prefix match by brute force (the reference for attribution checks).
pub fn origin(w: &World, ip: IpAddr) -> Option<u32> {
    w.routes.iter().filter(|(n, _)| n.contains(&ip)).max_by_key(|(n, _)| n.prefix_len()).map(|(_, a)| *a)
}

pub fn is_v4(n: &IpNet) -> bool {
    matches!(n, IpNet::V4(_))
}
