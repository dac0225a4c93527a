//! The running service: zones from the configuration, indicators from a feed (the store),
//! republished on every change, NOTIFY tasks, the HTTP endpoint.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kizuna_model::{Indicator, Timestamp};
use kizuna_rpz::{
    Entry, Granularity, IndicatorKey, RpzZone, action_records, client_passthru_zone, generate, triggers_for,
};
use kizuna_store::indicators::{IndicatorRecord, IndicatorStore};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Notify;

use crate::Error;
use crate::config::{DnsConfig, ZoneConfig};
use crate::metrics::DnsMetrics;
use crate::notify::spawn_notifiers;
use crate::server::{Primary, ZoneAccess};
use crate::tsig::key_name;

/// One publishable indicator.
#[derive(Debug, Clone)]
pub struct FeedItem {
    /// Its key.
    pub key: IndicatorKey,
    /// The indicator.
    pub indicator: Indicator,
    /// Publication granularity for URLs.
    pub granularity: Granularity,
}

/// One change of the feed.
#[derive(Debug, Clone)]
pub struct FeedChange {
    /// Its change sequence number.
    pub seq: u64,
    /// The indicator as it now is.
    pub item: FeedItem,
    /// Whether it is to be published now.
    pub publishable: bool,
}

/// Where the primary reads indicators from.
pub trait IndicatorFeed: Send + Sync {
    /// The newest change sequence number.
    fn change_seq(&self) -> Result<u64, Error>;
    /// Every indicator publishable at `now`.
    fn active(&self, now: Timestamp) -> Result<Vec<FeedItem>, Error>;
    /// Changes after `after` in order, at most `limit`; `None` when they are no longer
    /// available (the caller reloads everything with [`IndicatorFeed::active`]).
    fn changes_since(&self, after: u64, limit: usize, now: Timestamp) -> Result<Option<Vec<FeedChange>>, Error>;
}

/// How a record's URL granularity is decided (the indicator policy's `publish_granularity`).
pub type GranularityFn = dyn Fn(&IndicatorRecord) -> Granularity + Send + Sync;

/// The default granularity rule: a URL whose host matched a shared-platform allow-list entry
/// is published as the URL only; any other URL may block its host.
pub fn default_granularity(r: &IndicatorRecord) -> Granularity {
    if r.shared_host.is_some() { Granularity::UrlOnly } else { Granularity::Host }
}

/// A feed over the indicator store.
pub struct StoreFeed<S: ?Sized> {
    store: Arc<S>,
    granularity: Box<GranularityFn>,
}

impl<S: IndicatorStore + ?Sized> StoreFeed<S> {
    /// A feed over `store` deciding URL granularity with `granularity`.
    pub fn new(store: Arc<S>, granularity: Box<GranularityFn>) -> Self {
        StoreFeed { store, granularity }
    }
}

impl<S: IndicatorStore + ?Sized> IndicatorFeed for StoreFeed<S> {
    fn change_seq(&self) -> Result<u64, Error> {
        self.store.indicator_change_seq().map_err(|e| Error::Store(e.to_string()))
    }
    fn active(&self, now: Timestamp) -> Result<Vec<FeedItem>, Error> {
        let recs = self.store.active_indicators(now).map_err(|e| Error::Store(e.to_string()))?;
        Ok(recs
            .into_iter()
            .filter(|r| r.is_publishable(now))
            .map(|r| FeedItem { key: r.key, granularity: (self.granularity)(&r), indicator: r.indicator })
            .collect())
    }
    fn changes_since(&self, after: u64, limit: usize, now: Timestamp) -> Result<Option<Vec<FeedChange>>, Error> {
        let recs = self.store.indicator_changes_since(after, limit).map_err(|e| Error::Store(e.to_string()))?;
        Ok(Some(
            recs.into_iter()
                .map(|r| FeedChange {
                    seq: r.change_seq,
                    publishable: r.is_publishable(now),
                    item: FeedItem { key: r.key, granularity: (self.granularity)(&r), indicator: r.indicator.clone() },
                })
                .collect(),
        ))
    }
}

const MEMORY_LOG: usize = 1 << 20;

/// An in-process feed (indicators handed over directly, e.g. by an embedding process).
#[derive(Default)]
pub struct MemoryFeed {
    inner: Mutex<MemState>,
    wake: Arc<Notify>,
}

#[derive(Default)]
struct MemState {
    seq: u64,
    items: BTreeMap<IndicatorKey, FeedItem>,
    log: std::collections::VecDeque<FeedChange>,
}

impl MemState {
    fn log(&mut self, item: FeedItem, publishable: bool) {
        self.seq += 1;
        self.log.push_back(FeedChange { seq: self.seq, item, publishable });
        if self.log.len() > MEMORY_LOG {
            self.log.pop_front();
        }
    }
}

impl MemoryFeed {
    /// An empty feed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces indicators.
    pub fn upsert(&self, items: impl IntoIterator<Item = FeedItem>) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for i in items {
            g.items.insert(i.key, i.clone());
            g.log(i, true);
        }
        drop(g);
        self.wake.notify_one();
    }

    /// Removes indicators.
    pub fn remove(&self, keys: &[IndicatorKey]) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            if let Some(i) = g.items.remove(k) {
                g.log(i, false);
            }
        }
        drop(g);
        self.wake.notify_one();
    }

    /// Woken on every change (pass to [`Service::wake_on`]).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}

impl IndicatorFeed for MemoryFeed {
    fn change_seq(&self) -> Result<u64, Error> {
        Ok(self.inner.lock().unwrap_or_else(|p| p.into_inner()).seq)
    }
    fn active(&self, now: Timestamp) -> Result<Vec<FeedItem>, Error> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        Ok(g.items.values().filter(|i| i.indicator.expires > now).cloned().collect())
    }
    fn changes_since(&self, after: u64, limit: usize, now: Timestamp) -> Result<Option<Vec<FeedChange>>, Error> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match g.log.front() {
            Some(f) if f.seq > after + 1 => return Ok(None),
            None if g.seq > after => return Ok(None),
            _ => {}
        }
        Ok(Some(
            g.log
                .iter()
                .filter(|c| c.seq > after)
                .take(limit)
                .map(|c| FeedChange { publishable: c.publishable && c.item.indicator.expires > now, ..c.clone() })
                .collect(),
        ))
    }
}

/// Builds a zone's content from the feed's items.
pub fn build_zone(z: &ZoneConfig, items: &[FeedItem], now: Timestamp) -> Result<RpzZone, Error> {
    let zone = match &z.passthru_clients {
        Some(clients) => client_passthru_zone(&z.policy, clients),
        None => generate(
            &z.policy,
            items.iter().map(|i| Entry { key: i.key, indicator: &i.indicator, granularity: i.granularity }),
            now,
        ),
    };
    zone.map_err(|e| Error::Config(e.to_string()))
}

fn load_serials(path: Option<&Path>) -> BTreeMap<String, u32> {
    let Some(p) = path else { return BTreeMap::new() };
    std::fs::read_to_string(p).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
}

fn save_serials(path: Option<&Path>, primary: &Primary) {
    let Some(p) = path else { return };
    let m: BTreeMap<String, u32> = primary.zones().iter().map(|z| (z.label.clone(), z.zone.current().serial)).collect();
    let tmp = p.with_extension("tmp");
    let ok = serde_json::to_vec(&m)
        .ok()
        .and_then(|b| std::fs::write(&tmp, b).ok())
        .and_then(|_| std::fs::rename(&tmp, p).ok());
    if ok.is_none() {
        tracing::warn!(path = %p.display(), "cannot save zone serials");
    }
}

/// A configured primary with its zones loaded.
pub struct Service {
    /// The primary.
    pub primary: Primary,
    config: DnsConfig,
    feed: Arc<dyn IndicatorFeed>,
    wake: Arc<Notify>,
    seq: u64,
}

impl Service {
    /// Loads every zone from the feed and adds it to a new primary (first serial: the larger
    /// of the Unix time and the saved serial + 1).
    pub fn new(config: DnsConfig, feed: Arc<dyn IndicatorFeed>, metrics: DnsMetrics) -> Result<Self, Error> {
        let ring = config.validate()?;
        let primary = Primary::new(ring, metrics);
        let now = Timestamp::now();
        let seq = feed.change_seq()?;
        let items = feed.active(now)?;
        let saved = load_serials(config.serial_state.as_deref());
        let base = u32::try_from(now.as_secs().max(0)).unwrap_or(u32::MAX);
        for z in &config.zones {
            let zone = build_zone(z, &items, now)?;
            let label = zone.origin.trim_end_matches('.').to_owned();
            let initial = match saved.get(&label) {
                Some(&s) if !crate::zone::serial_lt(crate::zone::serial_next(s), base) => crate::zone::serial_next(s),
                _ => base,
            };
            let access = ZoneAccess {
                member: z.member.clone(),
                key: z.key.as_deref().map(key_name).transpose()?,
                allow: z.allow_transfer.clone(),
                notify: z.notify.clone(),
                notify_unsigned: z.notify_unsigned.clone(),
            };
            primary.add_zone(&zone, access, initial, config.history)?;
            tracing::info!(zone = %label, member = %z.member, serial = initial, triggers = zone.trigger_count(),
                skipped = zone.skipped.len(), "zone loaded");
        }
        save_serials(config.serial_state.as_deref(), &primary);
        Ok(Service { primary, config, feed, wake: Arc::new(Notify::new()), seq })
    }

    /// Republish at once whenever `n` is notified (in-process producers), besides polling.
    pub fn wake_on(&mut self, n: Arc<Notify>) {
        self.wake = n;
    }

    /// Applies the feed's changes since the last call to every indicator zone, incrementally
    /// (falls back to [`Service::republish`] when the feed lost them). Returns zones changed.
    pub fn follow(&mut self) -> Result<usize, Error> {
        const BATCH: usize = 10_000;
        let t = Instant::now();
        let mut changed = 0;
        loop {
            let now = Timestamp::now();
            let Some(batch) = self.feed.changes_since(self.seq, BATCH, now)? else {
                let seq = self.feed.change_seq()?;
                changed += self.republish()?;
                self.seq = seq;
                return Ok(changed);
            };
            let Some(last) = batch.last().map(|c| c.seq) else { break };
            for z in self.config.zones.iter().filter(|z| z.passthru_clients.is_none()) {
                let changes: Vec<(IndicatorKey, Vec<String>)> = batch
                    .iter()
                    .map(|c| {
                        let owners = if c.publishable {
                            let e = Entry {
                                key: c.item.key,
                                indicator: &c.item.indicator,
                                granularity: c.item.granularity,
                            };
                            triggers_for(&z.policy, e, now).unwrap_or_default()
                        } else {
                            Vec::new()
                        };
                        (c.item.key, owners)
                    })
                    .collect();
                let out =
                    self.primary.update(&z.policy.zone_name, &changes, z.policy.ttl, &action_records(&z.policy))?;
                if out.changed {
                    changed += 1;
                    tracing::info!(zone = %z.policy.zone_name, serial = out.serial, added = out.added,
                        removed = out.removed, "zone updated");
                }
            }
            self.seq = last;
            if batch.len() < BATCH {
                break;
            }
        }
        if changed > 0 {
            save_serials(self.config.serial_state.as_deref(), &self.primary);
            self.primary.metrics().publish_duration.observe(t.elapsed().as_secs_f64());
        }
        Ok(changed)
    }

    /// Regenerates every zone from the feed and publishes the ones that changed.
    pub fn republish(&self) -> Result<usize, Error> {
        let t = Instant::now();
        let now = Timestamp::now();
        let items = self.feed.active(now)?;
        let mut changed = 0;
        for z in &self.config.zones {
            let zone = build_zone(z, &items, now)?;
            let out = self.primary.publish(&zone)?;
            if out.changed {
                changed += 1;
                tracing::info!(zone = %zone.origin, serial = out.serial, added = out.added, removed = out.removed,
                    "zone published");
            }
        }
        if changed > 0 {
            save_serials(self.config.serial_state.as_deref(), &self.primary);
        }
        self.primary.metrics().publish_duration.observe(t.elapsed().as_secs_f64());
        Ok(changed)
    }

    /// Binds the configured addresses and runs: DNS, NOTIFY tasks, the change follower and
    /// the HTTP endpoint. Returns only on a bind error.
    pub async fn run(self) -> Result<(), Error> {
        let (udp, tcp, http) = self.bind().await?;
        self.run_on(udp, tcp, http).await
    }

    /// Binds the configured DNS and HTTP addresses (so that an embedding process can report
    /// a bind error before it starts anything else).
    pub async fn bind(&self) -> Result<(UdpSocket, TcpListener, Option<TcpListener>), Error> {
        let udp = UdpSocket::bind(self.config.listen).await?;
        let tcp = TcpListener::bind(self.config.listen).await?;
        let http = match self.config.http_listen {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        };
        Ok((udp, tcp, http))
    }

    /// Like [`Service::run`] on sockets already bound.
    pub async fn run_on(self, udp: UdpSocket, tcp: TcpListener, http: Option<TcpListener>) -> Result<(), Error> {
        self.run_until(udp, tcp, http, std::future::pending()).await
    }

    /// Like [`Service::run_on`], returning `Ok` when `shutdown` completes: the DNS sockets,
    /// NOTIFY tasks and HTTP endpoint are stopped first (used when the hub runs the primary).
    pub async fn run_until(
        mut self,
        udp: UdpSocket,
        tcp: TcpListener,
        http: Option<TcpListener>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), Error> {
        let source: IpAddr = udp.local_addr()?.ip();
        tracing::info!(listen = %udp.local_addr()?, "DNS primary serving");
        let ring = self.config.validate()?;
        let mut handles = Vec::new();
        for entry in self.primary.zones() {
            let key = entry.access.key.as_ref().and_then(|k| ring.get(k)).cloned();
            handles.extend(spawn_notifiers(&entry, key, source, &self.config.notify, self.primary.metrics()));
        }
        if let Some(l) = http {
            let router = crate::http::router(self.primary.clone());
            tracing::info!(listen = %l.local_addr()?, "DNS metrics/API serving");
            handles.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(l, router).await {
                    tracing::error!("http: {e}");
                }
            }));
        }
        let server = tokio::spawn(self.primary.clone().serve(udp, tcp));
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(1));
        let sweep = Duration::from_secs(self.config.expiry_sweep_secs.max(1));
        let mut last_sweep = Instant::now();
        let wake = self.wake.clone();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = wake.notified() => {}
                _ = &mut shutdown => {
                    server.abort();
                    handles.iter().for_each(|h| h.abort());
                    let _ = server.await;
                    tracing::info!("DNS primary stopped");
                    return Ok(());
                }
            }
            let seq = match self.feed.change_seq() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("indicator feed: {e}");
                    continue;
                }
            };
            if last_sweep.elapsed() >= sweep {
                // expiries produce no change record until the store marks them: regenerate
                match self.republish() {
                    Ok(_) => {
                        self.seq = seq;
                        last_sweep = Instant::now();
                    }
                    Err(e) => tracing::warn!("republish: {e}"),
                }
            } else if seq != self.seq
                && let Err(e) = self.follow()
            {
                tracing::warn!("indicator changes: {e}");
            }
            if server.is_finished() {
                break;
            }
        }
        match server.await {
            Ok(r) => r,
            Err(e) => Err(Error::Io(std::io::Error::other(e.to_string()))),
        }
    }
}
