//! Shared by the store's test files: the same test on a SQLite file and on a fresh PostgreSQL database.

use dingguard_store::{Store, StoreConfig};

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

/// A database of its own on the local server, dropped when the guard goes.
pub struct PgDatabase(String);

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::process::Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ])
            .output();
    }
}

pub async fn fresh_postgres() -> (Store, PgDatabase) {
    let name = format!("dg_test_{:016x}", rand::random::<u64>());
    let (client, connection) = tokio_postgres_connect("host=127.0.0.1 user=postgres dbname=postgres")
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let store = Store::open(&StoreConfig::Postgres { url, max_connections: 4 }).await.unwrap();
    (store, PgDatabase(name))
}

async fn tokio_postgres_connect(
    config: &str,
) -> Result<
    (tokio_postgres::Client, tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>),
    tokio_postgres::Error,
> {
    tokio_postgres::connect(config, tokio_postgres::NoTls).await
}
