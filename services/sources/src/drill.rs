//! Stop points for the kill tests, in debug builds only: with `DINGGUARD_DRILL_STOP_AT=<source>:<point>` set, the
//! source prints `drill: stopped at <source>:<point>` when it reaches that point and waits there for ever, so a
//! test can SIGKILL the process at exactly that moment. Release builds compile it away.

/// Waits for ever at `point` of `source` if the drill names it.
pub(crate) async fn stop_at(source: &str, point: &str) {
    #[cfg(debug_assertions)]
    {
        let wanted = std::env::var("DINGGUARD_DRILL_STOP_AT").unwrap_or_default();
        if wanted.split_once(':') == Some((source, point)) {
            println!("drill: stopped at {source}:{point}");
            std::future::pending::<()>().await;
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (source, point);
}
