//! `ingest_with`: the post-commit step sees every committed batch, after its commit, and an
//! error from it stops the run without losing what was committed.

use std::sync::Mutex;

use kizuna_attrib::Attributor;
use kizuna_model::Timestamp;
use kizuna_parsers::{Context, Format};
use kizuna_pipeline::{IngestError, Options, ingest_with};
use kizuna_store::Store;
use kizuna_store::sqlite::SqliteStore;

const COWRIE: &str = include_str!("../../kizuna-parsers/tests/fixtures/cowrie/cowrie.json");

fn ctx() -> Context {
    Context::new("cowrie.json", Timestamp::from_secs(1_772_690_400))
}

#[test]
fn step_sees_each_committed_batch() {
    let store = SqliteStore::open_in_memory().expect("store");
    let attributor = Attributor::new(&[], std::iter::empty());
    let seen = Mutex::new(Vec::new());
    let step = |b: &kizuna_store::Batch| {
        // The batch is already committed when the step runs.
        for r in &b.observations {
            assert!(store.observation(&r.id).map_err(|e| e.to_string())?.is_some(), "step ran before the commit");
        }
        seen.lock().map_err(|e| e.to_string())?.push(b.observations.len());
        Ok(())
    };
    let opts = Options { batch_size: 3, queue_depth: 2 };
    let s = ingest_with(&store, &attributor, &Format::Cowrie, &ctx(), COWRIE.as_bytes(), &opts, &step).expect("ingest");
    let seen = seen.into_inner().expect("lock");
    assert!(seen.len() > 1, "several batches: {seen:?}");
    assert_eq!(seen.iter().sum::<usize>() as u64, s.observations());
}

#[test]
fn step_error_stops_the_run_and_keeps_the_commit() {
    let store = SqliteStore::open_in_memory().expect("store");
    let attributor = Attributor::new(&[], std::iter::empty());
    let calls = Mutex::new(0);
    let step = |_: &kizuna_store::Batch| {
        *calls.lock().map_err(|e| e.to_string())? += 1;
        Err("indicator store unavailable".to_string())
    };
    let opts = Options { batch_size: 3, queue_depth: 1 };
    let err = ingest_with(&store, &attributor, &Format::Cowrie, &ctx(), COWRIE.as_bytes(), &opts, &step)
        .expect_err("step fails");
    match err {
        IngestError::AfterCommit { committed, message } => {
            assert_eq!(message, "indicator store unavailable");
            assert!(committed > 0);
            assert_eq!(store.totals().expect("totals").observations, committed, "the batch stays committed");
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(calls.into_inner().expect("lock"), 1, "no batch after the failed step");
}
