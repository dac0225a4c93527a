//! Parsers: bytes in, observations and errors out.
//!
//! Every parser is a pure, streaming function over a [`std::io::BufRead`]: it yields one
//! [`Item`] per input record and never aborts the stream for a bad record. A malformed record
//! becomes [`Item::Rejected`] with its line number, reason and raw text; a well-formed record the
//! format defines but kizuna does not turn into an observation (a Suricata `stats` line, a
//! Cowrie `cowrie.client.version`) becomes [`Item::Skipped`] so it can be counted.
//!
//! Formats: [`Format`]. Each lives in its own module with its fixtures under
//! `tests/fixtures/<format>/`.
