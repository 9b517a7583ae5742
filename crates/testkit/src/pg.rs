//! A PostgreSQL database of its own per test on the machine's server (127.0.0.1:5432, trust auth).

/// A database of its own on the local server, dropped when the guard goes.
pub struct PgDatabase(String);

impl PgDatabase {
    pub fn name(&self) -> &str {
        &self.0
    }

    /// Refuses new connections to the database and ends the open ones, as a server restart does; `allow` lets
    /// them in again.
    pub fn cut_off(&self, cut: bool) -> anyhow::Result<()> {
        let name = &self.0;
        admin(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {}", !cut))?;
        if cut {
            admin(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))?;
        }
        Ok(())
    }
}

/// Runs one statement as the server's superuser on the `postgres` database.
fn admin(statement: &str) -> anyhow::Result<()> {
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", statement])
        .output()?;
    anyhow::ensure!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

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

/// A fresh, empty database of its own and its `postgres://` URL.
pub async fn fresh_database() -> (String, PgDatabase) {
    let name = format!("dg_test_{:016x}", rand::random::<u64>());
    let (client, connection) = tokio_postgres_connect("host=127.0.0.1 user=postgres dbname=postgres")
        .await
        .expect("PostgreSQL on 127.0.0.1:5432");
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    (format!("postgres://postgres@127.0.0.1:5432/{name}"), PgDatabase(name))
}

async fn tokio_postgres_connect(
    config: &str,
) -> Result<
    (tokio_postgres::Client, tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>),
    tokio_postgres::Error,
> {
    tokio_postgres::connect(config, tokio_postgres::NoTls).await
}
