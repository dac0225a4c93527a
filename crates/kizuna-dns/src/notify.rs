//! NOTIFY (RFC 1996) to each secondary as soon as a new version commits, retried with backoff
//! until the secondary acknowledges; a newer serial replaces a pending one.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::config::NotifyConfig;
use crate::metrics::{DnsMetrics, NotifyFailLabel, SecondaryLabel};
use crate::server::ZoneEntry;
use crate::tsig::Key;

fn random_id(seq: u64) -> u16 {
    (RandomState::new().hash_one(seq) & 0xffff) as u16
}

fn build_notify(entry: &ZoneEntry, serial: u32, id: u16, key: Option<&Key>) -> Option<Vec<u8>> {
    let snap = entry.zone.current();
    let mut m = Message::new(id, MessageType::Query, OpCode::Notify);
    m.metadata.authoritative = true;
    let mut q = Query::new();
    q.name = snap.origin.clone();
    q.query_type = RecordType::SOA;
    q.query_class = DNSClass::IN;
    m.add_query(q);
    let parse = |s: &str| Name::from_ascii(s).ok();
    let clamp = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let soa = SOA::new(
        parse(&snap.soa.mname)?,
        parse(&snap.soa.rname)?,
        serial,
        clamp(snap.soa.refresh),
        clamp(snap.soa.retry),
        clamp(snap.soa.expire),
        snap.soa.minimum,
    );
    m.add_answer(Record::from_rdata(snap.origin.clone(), snap.soa_ttl, RData::SOA(soa)));
    if let Some(k) = key {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let (sig, _) = k.signer().sign_message(&m, now).ok()?;
        m.set_signature(sig);
    }
    m.to_vec().ok()
}

/// Starts one NOTIFY task per configured secondary of the zone.
pub fn spawn_notifiers(
    entry: &Arc<ZoneEntry>,
    key: Option<Key>,
    source: IpAddr,
    cfg: &NotifyConfig,
    metrics: &DnsMetrics,
) -> Vec<JoinHandle<()>> {
    let signed = entry.access.notify.iter().map(|a| (*a, key.clone()));
    let unsigned = entry.access.notify_unsigned.iter().map(|a| (*a, None));
    signed
        .chain(unsigned)
        .map(|(target, key)| {
            let entry = entry.clone();
            let cfg = cfg.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move { notifier(entry, target, key, source, cfg, metrics).await })
        })
        .collect()
}

async fn notifier(
    entry: Arc<ZoneEntry>,
    target: SocketAddr,
    key: Option<Key>,
    source: IpAddr,
    cfg: NotifyConfig,
    metrics: DnsMetrics,
) {
    let label = SecondaryLabel { zone: entry.label.clone(), secondary: target.to_string() };
    let failed = |reason: &'static str| {
        let l = NotifyFailLabel { zone: entry.label.clone(), secondary: target.to_string(), reason };
        metrics.notify_failed.get_or_create(&l).inc();
    };
    let bind_ip = match (source, target.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => source,
        (_, IpAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        (_, IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let sock = match UdpSocket::bind(SocketAddr::new(bind_ip, 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(zone = %entry.label, %target, "NOTIFY socket: {e}");
            return;
        }
    };
    let mut rx = entry.subscribe();
    let mut seq = 0u64;
    let mut buf = vec![0u8; 4096];
    loop {
        if rx.changed().await.is_err() {
            return;
        }
        let mut serial = *rx.borrow_and_update();
        let mut wait = Duration::from_millis(cfg.first_retry_ms.max(1));
        loop {
            seq += 1;
            let id = random_id(seq);
            let Some(msg) = build_notify(&entry, serial, id, key.as_ref()) else {
                tracing::error!(zone = %entry.label, "cannot build NOTIFY");
                break;
            };
            metrics.notify_sent.get_or_create(&label).inc();
            if let Err(e) = sock.send_to(&msg, target).await {
                tracing::debug!(%target, "NOTIFY send: {e}");
                failed("send");
            }
            let deadline = Instant::now() + wait;
            let acked = loop {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::select! {
                    r = tokio::time::timeout(left, sock.recv_from(&mut buf)) => match r {
                        Ok(Ok((n, from))) if from.ip() == target.ip() => {
                            match Message::from_vec(&buf[..n]) {
                                Ok(m) if m.metadata.id == id && m.metadata.message_type == MessageType::Response
                                    && m.metadata.op_code == OpCode::Notify => {
                                    if m.metadata.response_code == ResponseCode::NoError {
                                        break true;
                                    }
                                    tracing::warn!(zone = %entry.label, %target, rcode = ?m.metadata.response_code,
                                        "NOTIFY answered with an error");
                                    failed("rcode");
                                    tokio::time::sleep(left).await;
                                    break false;
                                }
                                _ => continue,
                            }
                        }
                        Ok(_) => continue,
                        Err(_) => {
                            failed("timeout");
                            break false;
                        }
                    },
                    c = rx.changed() => {
                        if c.is_err() { return; }
                        serial = *rx.borrow_and_update();
                        wait = Duration::from_millis(cfg.first_retry_ms.max(1));
                        break false;
                    }
                }
            };
            if acked {
                metrics.notify_acked.get_or_create(&label).inc();
                metrics.notify_last_ack_serial.get_or_create(&label).set(i64::from(serial));
                let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
                metrics.notify_last_ack_time.get_or_create(&label).set(t);
                tracing::debug!(zone = %entry.label, %target, serial, "NOTIFY acknowledged");
                break;
            }
            if Instant::now() >= deadline {
                wait = (wait * 2).min(Duration::from_millis(cfg.max_retry_ms.max(cfg.first_retry_ms)));
            }
        }
    }
}
