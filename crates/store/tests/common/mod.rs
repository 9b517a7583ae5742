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

pub use dingguard_tests::pg::fresh_postgres;
