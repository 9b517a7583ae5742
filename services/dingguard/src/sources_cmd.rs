//! `dingguard sources backfill --since …`: reads the file audit log from a past point up to now into the event
//! log, on demand, with a progress bar by the time reached. What the log already holds is dropped there, so a
//! backfill over days the poller has read costs calls and writes nothing twice.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use dingguard::app::{file_audit_source, open_log};
use dingguard::config::{Config, ProcessEnv};
use dingguard_model::{Clock, SystemClock};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

/// `2026-11-01`, `2026-11-01T08:00:00Z`, or a span back from now: `36h`, `7d`.
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64> {
    let text = text.trim();
    let span = |unit: char, ms: i64| -> Option<i64> {
        let n: i64 = text.strip_suffix(unit)?.parse().ok().filter(|n| *n > 0)?;
        Some(now_ms - n.checked_mul(ms)?)
    };
    let at = span('d', 86_400_000)
        .or_else(|| span('h', 3_600_000))
        .or_else(|| dingguard_model::parse_rfc3339_ms(text))
        .or_else(|| dingguard_model::parse_rfc3339_ms(&format!("{text}T00:00:00Z")));
    match at {
        Some(at) if at >= now_ms => bail!("--since {text:?} is not in the past"),
        Some(at) if now_ms - at > 366 * 86_400_000 => bail!("--since {text:?} is more than a year back"),
        Some(at) => Ok(at),
        None => bail!("--since {text:?} is not a date (2026-11-01), a time (2026-11-01T08:00:00Z) or a span (36h, 7d)"),
    }
}

pub async fn backfill(config_file: Option<&Path>, since: &str) -> Result<()> {
    let config = Config::load(config_file, &ProcessEnv, false)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now_ms();
    let since_ms = parse_since(since, now)?;
    let (Some(api), Some(audit)) = (&config.sources.api, &config.sources.file_audit) else {
        bail!(
            "backfill reads the file audit log: set DINGGUARD_SOURCES=file-audit with DINGGUARD_DINGTALK_CLIENT_ID and \
             DINGGUARD_DINGTALK_CLIENT_SECRET (or [sources] and [dingtalk.api] in the file)"
        );
    };
    let api = Arc::new(
        dingguard_dingtalk_api::DingTalkApi::new(api.clone(), clock.clone())
            .context("cannot set up DingTalk's API client")?,
    );
    let log = open_log(&config.backend)?;
    log.ensure_topics(&config.topics.all()).await.context("the event log is not reachable")?;
    let source = file_audit_source(&config, audit, api, &log, &clock);
    let span = u64::try_from(now - since_ms).unwrap_or(0);
    let bar = ProgressBar::new(span);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {percent}% of the span {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    let report = source
        .backfill(since_ms, &shutdown, &|report, at| {
            bar.set_position(u64::try_from(at - since_ms).unwrap_or(0).min(span));
            bar.set_message(format!(
                "{} records, {} written, {} already there",
                report.items, report.written, report.duplicates
            ));
        })
        .await?;
    bar.finish_and_clear();
    log.flush(std::time::Duration::from_secs(10)).await.context("the event log did not confirm the writes")?;
    println!(
        "backfilled the file audit log from {}: {} records read in {} calls, {} events written, {} already in the log",
        dingguard_model::rfc3339_ms(since_ms),
        report.items,
        report.calls,
        report.written,
        report.duplicates
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_takes_dates_times_and_spans_and_refuses_the_rest() {
        let now = 1_764_547_200_000; // 2025-12-01T00:00:00Z
        assert_eq!(parse_since("7d", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_since("36h", now).unwrap(), now - 36 * 3_600_000);
        assert_eq!(parse_since("2025-11-30", now).unwrap(), now - 86_400_000);
        assert_eq!(parse_since("2025-11-30T12:00:00Z", now).unwrap(), now - 43_200_000);
        for bad in ["yesterday", "0d", "-3d", "2026-01-01", "2020-01-01", "99999999999999999d"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }
}
