//! Shared by the store's test files: the same test on a SQLite file and on a fresh PostgreSQL database.

#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = dingguard_store::Store::open(&dingguard_store::StoreConfig::Sqlite(dir.path().join("state.db"))).await.unwrap();
                    super::$name(store).await.unwrap();
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _db) = super::fresh_postgres().await;
                    super::$name(store).await.unwrap();
                }
            )*
        }
    };
}

pub use dingguard_testkit::pg::PgDatabase;

/// A fresh, migrated store on a database of its own.
pub async fn fresh_postgres() -> (dingguard_store::Store, PgDatabase) {
    let (url, db) = dingguard_testkit::pg::fresh_database().await;
    let config = dingguard_store::StoreConfig::Postgres { url: dingguard_model::Secret::new(url), max_connections: 4 };
    (dingguard_store::Store::open(&config).await.unwrap(), db)
}
