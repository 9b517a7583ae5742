//! A PostgreSQL database of its own per test on the machine's server (127.0.0.1:5432, trust auth).

use dingguard_store::{Store, StoreConfig};

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

/// A fresh, migrated database and its `postgres://` URL for more connections (a second replica).
pub async fn fresh_postgres_url() -> (Store, String, PgDatabase) {
    let name = format!("dg_test_{:016x}", rand::random::<u64>());
    let (client, connection) = tokio_postgres_connect("host=127.0.0.1 user=postgres dbname=postgres")
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let store = Store::open(&StoreConfig::Postgres { url: url.clone(), max_connections: 4 }).await.unwrap();
    (store, url, PgDatabase(name))
}

pub async fn fresh_postgres() -> (Store, PgDatabase) {
    let (store, _, db) = fresh_postgres_url().await;
    (store, db)
}

async fn tokio_postgres_connect(
    config: &str,
) -> Result<
    (tokio_postgres::Client, tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>),
    tokio_postgres::Error,
> {
    tokio_postgres::connect(config, tokio_postgres::NoTls).await
}
