//! The thin layer both databases sit behind. Statements are written once, in the SQL both SQLite and
//! PostgreSQL accept (`$1` placeholders, `ON CONFLICT … DO UPDATE`, `RETURNING`, BIGINT and TEXT columns).

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};
use tokio_postgres::types::{ToSql, Type};

use crate::StoreError;

/// A bound parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(i64),
    Text(String),
    NullInt,
    NullText,
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        v.map_or(Self::NullText, Self::Text)
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Self::NullInt, Self::Int)
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(Vec<Val>);

impl Row {
    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        match self.0.get(i) {
            Some(Val::Int(v)) => Ok(*v),
            other => Err(StoreError::Corrupt(format!("column {i} is {other:?}, expected an integer"))),
        }
    }
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.0.get(i) {
            Some(Val::Int(v)) => Ok(Some(*v)),
            Some(Val::NullInt | Val::NullText) => Ok(None),
            other => Err(StoreError::Corrupt(format!("column {i} is {other:?}, expected an integer"))),
        }
    }
    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        match self.0.get(i) {
            Some(Val::Text(v)) => Ok(v.clone()),
            other => Err(StoreError::Corrupt(format!("column {i} is {other:?}, expected text"))),
        }
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.0.get(i) {
            Some(Val::Text(v)) => Ok(Some(v.clone())),
            Some(Val::NullInt | Val::NullText) => Ok(None),
            other => Err(StoreError::Corrupt(format!("column {i} is {other:?}, expected text"))),
        }
    }
}

#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Postgres(deadpool_postgres::Pool),
}

pub(crate) fn sqlite_error(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

pub(crate) fn pg_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

impl Db {
    pub(crate) fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(format!("{}: {e}", dir.display())))?;
        }
        let conn = rusqlite::Connection::open(path).map_err(sqlite_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;",
        )
        .map_err(sqlite_error)?;
        Ok(Self::Sqlite(Arc::new(Mutex::new(conn))))
    }

    pub(crate) fn open_postgres(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e| StoreError::Config(format!("database URL is invalid: {e}")))?;
        let manager = deadpool_postgres::Manager::from_config(
            config,
            tokio_postgres::NoTls,
            deadpool_postgres::ManagerConfig { recycling_method: deadpool_postgres::RecyclingMethod::Fast },
        );
        let pool = deadpool_postgres::Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Self::Postgres(pool))
    }

    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Starts a transaction; dropping it without `commit` rolls it back.
    pub(crate) async fn begin(&self) -> Result<Tx<'_>, StoreError> {
        match self {
            Self::Sqlite(conn) => {
                let guard = conn.lock().await;
                guard.execute_batch("BEGIN IMMEDIATE").map_err(sqlite_error)?;
                Ok(Tx { inner: Some(TxInner::Sqlite(guard)) })
            }
            Self::Postgres(pool) => {
                let client = pool.get().await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
                client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED").await.map_err(pg_error)?;
                Ok(Tx { inner: Some(TxInner::Postgres(Box::new(client))) })
            }
        }
    }
}

enum TxInner<'a> {
    Sqlite(MutexGuard<'a, rusqlite::Connection>),
    Postgres(Box<deadpool_postgres::Object>),
}

pub(crate) struct Tx<'a> {
    inner: Option<TxInner<'a>>,
}

/// SQLite numbers `$N` parameters by first appearance, not by N; `?N` keeps PostgreSQL's meaning.
fn sqlite_sql(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn sqlite_params(params: &[Val]) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|p| match p {
            Val::Int(v) => rusqlite::types::Value::Integer(*v),
            Val::Text(v) => rusqlite::types::Value::Text(v.clone()),
            Val::NullInt | Val::NullText => rusqlite::types::Value::Null,
        })
        .collect()
}

fn pg_params(params: &[Val]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Val::Int(v) => Box::new(*v),
                Val::Text(v) => Box::new(v.clone()),
                Val::NullInt => Box::new(None::<i64>),
                Val::NullText => Box::new(None::<String>),
            }
        })
        .collect()
}

fn sqlite_row(row: &rusqlite::Row<'_>, columns: usize) -> rusqlite::Result<Row> {
    let mut out = Vec::with_capacity(columns);
    for i in 0..columns {
        out.push(match row.get_ref(i)? {
            rusqlite::types::ValueRef::Integer(v) => Val::Int(v),
            rusqlite::types::ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
            rusqlite::types::ValueRef::Null => Val::NullText,
            rusqlite::types::ValueRef::Real(f) => Val::Int(f as i64),
            rusqlite::types::ValueRef::Blob(b) => Val::Text(String::from_utf8_lossy(b).into_owned()),
        });
    }
    Ok(Row(out))
}

fn pg_row(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let t = column.type_();
        out.push(if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i).map_err(pg_error)?.map_or(Val::NullInt, Val::Int)
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i).map_err(pg_error)?.map_or(Val::NullInt, |v| Val::Int(v.into()))
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i).map_err(pg_error)?.map_or(Val::NullInt, |v| Val::Int(v.into()))
        } else {
            row.try_get::<_, Option<String>>(i).map_err(pg_error)?.map_or(Val::NullText, Val::Text)
        });
    }
    Ok(Row(out))
}

impl Tx<'_> {
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self.inner, Some(TxInner::Postgres(_)))
    }

    pub(crate) async fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        match self.inner.as_mut().expect("open transaction") {
            TxInner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(&sqlite_sql(sql)).map_err(sqlite_error)?;
                let n = stmt.execute(rusqlite::params_from_iter(sqlite_params(params))).map_err(sqlite_error)?;
                Ok(n as u64)
            }
            TxInner::Postgres(client) => {
                let boxed = pg_params(params);
                let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
                let stmt = client.prepare_cached(sql).await.map_err(pg_error)?;
                client.execute(&stmt, &refs).await.map_err(pg_error)
            }
        }
    }

    pub(crate) async fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        match self.inner.as_mut().expect("open transaction") {
            TxInner::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(&sqlite_sql(sql)).map_err(sqlite_error)?;
                let columns = stmt.column_count();
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(sqlite_params(params)), |r| sqlite_row(r, columns))
                    .map_err(sqlite_error)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(sqlite_error)
            }
            TxInner::Postgres(client) => {
                let boxed = pg_params(params);
                let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect();
                let stmt = client.prepare_cached(sql).await.map_err(pg_error)?;
                client.query(&stmt, &refs).await.map_err(pg_error)?.iter().map(pg_row).collect()
            }
        }
    }

    pub(crate) async fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        match self.inner.as_mut().expect("open transaction") {
            TxInner::Sqlite(conn) => conn.execute_batch(sql).map_err(sqlite_error),
            TxInner::Postgres(client) => client.batch_execute(sql).await.map_err(pg_error),
        }
    }

    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        match self.inner.take().expect("open transaction") {
            // The fsync of a commit blocks; keep it off the async workers' hot path.
            TxInner::Sqlite(conn) => {
                let commit = || conn.execute_batch("COMMIT");
                let multi_thread = tokio::runtime::Handle::try_current()
                    .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
                if multi_thread { tokio::task::block_in_place(commit) } else { commit() }.map_err(sqlite_error)
            }
            TxInner::Postgres(client) => client.batch_execute("COMMIT").await.map_err(pg_error),
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        match self.inner.take() {
            Some(TxInner::Sqlite(conn)) => {
                let _ = conn.execute_batch("ROLLBACK");
            }
            // The connection leaves the pool and closes, which makes the server abort the transaction.
            Some(TxInner::Postgres(client)) => drop(deadpool_postgres::Object::take(*client)),
            None => {}
        }
    }
}
