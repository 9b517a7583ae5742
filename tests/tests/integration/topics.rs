//! `dingguard topics ensure` against a real Kafka-protocol broker: the topics are made as configured, and a topic
//! that exists with fewer partitions or replicas than configured is refused, by the command and at start-up, with
//! what to do.

use anyhow::Result;
use dingguard_testkit::broker::Broker;
use dingguard_tests::process::{deployment_env, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_made_as_configured_and_a_smaller_one_is_refused() -> Result<()> {
    let broker = Broker::start().await?;
    let dir = tempfile::tempdir()?;
    let mut envs = deployment_env(dir.path(), ["topicstoken", "o1w0aum42yaptlz8alnhwikjd3jenzt9cb9wmzptgus", "dingtp"]);
    envs.push(("DINGGUARD_KAFKA_BROKERS", broker.bootstrap()));
    envs.push(("DINGGUARD_LOG_PARTITIONS", "3".to_owned()));
    let (ok, out, err) = run(&["topics", "ensure"], &envs).await?;
    assert!(ok, "{err}");
    for topic in ["dingguard.events", "dingguard.alerts", "dingguard.approvals", "dingguard.dlq"] {
        assert!(out.contains(&format!("{topic}: 3 partitions, replication 1")), "{out}");
    }
    // Run again: nothing to do, the same answer.
    let (ok, again, err) = run(&["topics", "ensure"], &envs).await?;
    assert!(ok && again == out, "{again}{err}");

    // More partitions configured than the topics have: refused, by the command and by a service starting.
    let mut more = envs.clone();
    more.retain(|(k, _)| *k != "DINGGUARD_LOG_PARTITIONS");
    more.push(("DINGGUARD_LOG_PARTITIONS", "5".to_owned()));
    let (ok, _, err) = run(&["topics", "ensure"], &more).await?;
    assert!(!ok, "a topic smaller than configured was accepted");
    assert!(err.contains("topic dingguard.events has 3 partitions, fewer than the 5 configured"), "{err}");
    assert!(err.contains("kafka-topics --alter"), "says what to do: {err}");
    let (ok, _, err) = run(&["receiver"], &more).await?;
    assert!(!ok && err.contains("fewer than the 5 configured"), "the receiver started anyway: {err}");

    // Replication above what the topics have.
    let config = dir.path().join("replicated.toml");
    std::fs::write(&config, "[log]\nreplication_factor = 3\nmin_insync_replicas = 2\n")?;
    let mut replicated = envs.clone();
    replicated.push(("DINGGUARD_CONFIG", config.display().to_string()));
    let (ok, _, err) = run(&["topics", "ensure"], &replicated).await?;
    assert!(!ok && err.contains("replication 1, below the 3 configured"), "{err}");

    // A cross-field mistake is named before anything is touched.
    std::fs::write(&config, "[log]\nreplication_factor = 2\nmin_insync_replicas = 3\n")?;
    let (ok, _, err) = run(&["topics", "ensure"], &replicated).await?;
    assert!(!ok && err.contains("min_insync_replicas 3 must be between 1 and log.replication_factor"), "{err}");
    Ok(())
}
