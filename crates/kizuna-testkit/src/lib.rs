//! Helpers shared by kizuna's integration tests (a dev-dependency only; nothing ships it).

/// Installs the process-wide rustls provider (ring). With the workspace's features unified,
/// reqwest is built with `rustls-no-provider`, and building any client panics without one.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain-HTTP client for talking to servers a test started on loopback.
pub fn http_client() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::new()
}

/// The same, not following redirects (to check where a server sends the browser).
pub fn http_client_no_redirect() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a reqwest client without TLS settings always builds")
}
