//! A process that still answers but no longer does its work is worse than one that is down: a task of `dingguard
//! serve` that panics stops the process with an error naming it, and `/readyz` follows the store as well as the log.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use dingguard_tests::deployment::Deployment;
use dingguard_tests::pg::fresh_postgres_url;
use dingguard_tests::process::{Service, deployment_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_panics_stops_the_process_with_an_error_naming_it() -> Result<()> {
    for task in ["alerter", "approver", "audit-check", "console", "log-probe", "store-probe"] {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("stderr.log");
        let mut envs =
            deployment_env(dir.path(), ["supervisetoken", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingsup"]);
        // Debug builds only: the named task panics half a second after it starts.
        envs.push(("DINGGUARD_DRILL_PANIC_TASK", task.to_owned()));
        let mut service = Service::start_logging(&["serve"], &envs, Some(&log)).await?;
        let started = Instant::now();
        let status = service.wait(Duration::from_secs(15)).await?;
        ensure!(!status.success(), "{task}: the process exited with {status} after the task panicked");
        let stderr = std::fs::read_to_string(&log)?;
        ensure!(
            stderr.contains(&format!("the {task} task failed")) && stderr.contains("panics on purpose"),
            "{task}: no line names the task and its panic: {stderr}"
        );
        eprintln!("{task}: the process exited {:?} after start, with {status}", started.elapsed());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_store_through_a_database_outage() -> Result<()> {
    let (_store, url, db) = fresh_postgres_url().await;
    let d = Deployment::start(&[("DINGGUARD_DATABASE_URL", url), ("DINGGUARD_READINESS_INTERVAL_MS", "200".into())])
        .await?;
    let until = async |want: u16, within: Duration| -> Result<Duration> {
        let started = Instant::now();
        loop {
            if d.readyz().await? == want {
                return Ok(started.elapsed());
            }
            ensure!(started.elapsed() < within, "/readyz did not become {want} within {within:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    until(200, Duration::from_secs(10)).await?;
    db.cut_off(true)?;
    let down = until(503, Duration::from_secs(10)).await?;
    let body = reqwest::get(d.url("/readyz")).await?.text().await?;
    ensure!(body.contains("state store"), "{body}");
    db.cut_off(false)?;
    let up = until(200, Duration::from_secs(20)).await?;
    eprintln!("/readyz failed {down:?} after the database went away and passed {up:?} after it came back");
    Ok(())
}
