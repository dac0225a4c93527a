//! The conformance battery on the SQLite backend, in memory and on disk.

mod memory {
    use kizuna_store::Store;
    use kizuna_store::sqlite::SqliteStore;

    kizuna_store::store_conformance_tests!(|| -> Box<dyn Store> {
        Box::new(SqliteStore::open_in_memory().expect("open in-memory store"))
    });
}

mod disk {
    use kizuna_store::Store;
    use kizuna_store::conformance::Guarded;
    use kizuna_store::sqlite::SqliteStore;

    kizuna_store::store_conformance_tests!(|| -> Box<dyn Store> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("kizuna.db")).expect("open store");
        Box::new(Guarded { store, guard: dir })
    });
}
