//! The composition root: the one place that builds dingguard's services from validated settings and wires them
//! together. `dingguard serve` (and each single-service mode), the test kits and the bench all call [`build`], so
//! the wiring production runs is the wiring the tests run. [`App::run`] serves until shutdown, supervising every
//! task it started.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use dingguard_alerter::{Alerter, AlerterSettings};
use dingguard_approver::{Approver, ApproverSettings};
use dingguard_console::{Console, ConsoleSettings};
use dingguard_eventlog::{EmbeddedLog, EmbeddedOptions, EventLog, KafkaLog, KafkaOptions};
use dingguard_model::{Clock, SystemClock};
use dingguard_receiver::{LogReadiness, Receiver, health_routes, metrics_route, probe_log};
use prometheus_client::registry::Registry;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, LogBackend};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AllInOne,
    Receiver,
    Alerter,
    Approver,
    /// The sources alone (Stream mode among them): DingTalk's events fetched into the log.
    Stream,
}

pub fn open_log(backend: &LogBackend) -> Result<EventLog> {
    Ok(match backend {
        LogBackend::Embedded { path, durability, partitions, unique_ids, min_free_bytes } => {
            let options = EmbeddedOptions {
                partitions: *partitions,
                durability: *durability,
                unique_ids: *unique_ids,
                min_free_bytes: *min_free_bytes,
                ..EmbeddedOptions::default()
            };
            EventLog::Embedded(
                EmbeddedLog::open(path, options)
                    .with_context(|| format!("cannot open the event log at {}", path.display()))?,
            )
        }
        LogBackend::Kafka {
            brokers,
            partitions,
            replication_factor,
            delivery_timeout,
            properties,
            instance_id,
            min_insync_replicas,
            retention_hours,
        } => {
            let mut options = KafkaOptions::new(brokers.clone());
            options.min_insync_replicas = min_insync_replicas.map(|n| n.to_string());
            options.retention_ms = retention_hours.map(|h| (h * 3_600_000).to_string());
            options.partitions = *partitions;
            options.replication_factor = *replication_factor;
            options.delivery_timeout = *delivery_timeout;
            options.properties = properties.clone();
            options.instance_id.clone_from(instance_id);
            EventLog::Kafka(KafkaLog::connect(options).context("cannot configure the Kafka client")?)
        }
    })
}

/// Creates the topics dingguard uses and checks that those which existed can serve as configured: on Kafka a
/// topic with fewer partitions or replicas than configured is refused with what to do; the embedded log only
/// warns (its topics keep the partitions they were made with). A log not reachable yet is not fatal: the readiness
/// probe keeps trying and creates them once it is; then `None`.
pub async fn ensure_topics(config: &Config, log: &EventLog) -> Result<Option<Vec<dingguard_eventlog::TopicShape>>> {
    let topics = config.topics.all();
    if let Err(error) = log.ensure_topics(&topics).await {
        tracing::warn!(%error, "could not create topics yet");
        return Ok(None);
    }
    let shapes = match log.describe_topics(&topics).await {
        Ok(shapes) => shapes,
        Err(error) => {
            tracing::warn!(%error, "could not read the topics' layout yet");
            return Ok(None);
        }
    };
    let (partitions, replicas, kafka) = match &config.backend {
        LogBackend::Embedded { partitions, .. } => (*partitions, None, false),
        LogBackend::Kafka { partitions, replication_factor, .. } => (*partitions, Some(*replication_factor), true),
    };
    let wrong: Vec<String> = shapes.iter().filter_map(|s| s.mismatch(partitions, replicas)).collect();
    if !wrong.is_empty() {
        if kafka {
            anyhow::bail!(
                "{}; add partitions (kafka-topics --alter --partitions) or replicas (kafka-reassign-partitions), or set \
                 log.partitions / log.replication_factor to what the cluster has; log.ensure_topics = false skips \
                 this check",
                wrong.join("; ")
            );
        }
        tracing::warn!(topics = ?wrong, "embedded topics keep the partitions they were made with");
    }
    Ok(Some(shapes))
}

/// The log back end in a few words, for the start-up line.
pub fn describe(backend: &LogBackend) -> String {
    match backend {
        LogBackend::Embedded { path, .. } => format!("embedded event log at {}", path.display()),
        LogBackend::Kafka { brokers, .. } => format!("Kafka event log at {brokers}"),
    }
}

/// What a caller holds already and hands in instead of letting [`build`] make it: the clock (tests move theirs),
/// an event log or a store it opened itself (to read back, or to share between two replicas of a test).
#[derive(Default)]
pub struct Parts {
    pub clock: Option<Arc<dyn Clock>>,
    pub log: Option<EventLog>,
    pub store: Option<dingguard_store::Store>,
}

/// A built application, not yet serving. Its handles stay usable after [`App::run`] starts (they are clones).
pub struct App {
    pub addr: SocketAddr,
    pub ops_addr: Option<SocketAddr>,
    pub mode: Mode,
    /// Cancel to shut down: stop taking work, drain, commit, flush, return.
    pub shutdown: CancellationToken,
    pub log: EventLog,
    pub store: Option<dingguard_store::Store>,
    pub approver: Option<Approver>,
    pub console: Option<Console>,
    pub readiness: LogReadiness,
    pub registry: Arc<Registry>,
    /// The generated console sign-in when no passwords are configured: (console URL, login).
    pub demo_login: Option<(String, crate::config::console::DemoLogin)>,
    listener: tokio::net::TcpListener,
    router: axum::Router,
    ops: Option<(tokio::net::TcpListener, axum::Router)>,
    tasks: JoinSet<(&'static str, Result<()>)>,
    http: dingguard_web::HttpLimits,
    http_metrics: dingguard_web::HttpMetrics,
}

/// Builds every service `mode` runs from `config`, on `listener` (and `ops_listener` for `/metrics`), with what
/// `parts` hands in; nothing serves until [`App::run`].
pub async fn build(
    config: &Config,
    mode: Mode,
    listener: tokio::net::TcpListener,
    ops_listener: Option<tokio::net::TcpListener>,
    parts: Parts,
) -> Result<App> {
    let clock: Arc<dyn Clock> = parts.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let log = match parts.log {
        Some(log) => log,
        None => open_log(&config.backend)?,
    };
    if config.ensure_topics {
        ensure_topics(config, &log).await?;
    }

    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let mut registry = Registry::default();
    let http_metrics = dingguard_web::HttpMetrics::register(&mut registry);
    dingguard_telemetry::register_panics(&mut registry);
    let mut demo_login = None;
    let mut tasks: JoinSet<(&'static str, Result<()>)> = JoinSet::new();
    let mut router = axum::Router::new();
    let mut api_parts = Vec::new();
    let mut readiness = LogReadiness::default();
    let mut console_handle = None;

    if matches!(mode, Mode::AllInOne | Mode::Receiver) {
        let receiver = Receiver::new(
            config.apps.clone(),
            log.clone(),
            config.topics.clone(),
            config.receiver.clone(),
            clock.clone(),
            &mut registry,
        );
        router = router.merge(receiver.router());
        // The probe that gates callbacks also answers /readyz.
        readiness = receiver.readiness();
        let stop = shutdown.clone();
        supervise(&mut tasks, "log-probe", async move { Ok(receiver.watch_log(stop).await?) });
        // Sources that fetch from DingTalk run beside the receiver: they write to the same log, as pushes do.
        start_sources(config, &log, &clock, &mut registry, &mut tasks, &shutdown)?;
    } else {
        if mode == Mode::Stream {
            start_sources(config, &log, &clock, &mut registry, &mut tasks, &shutdown)?;
        }
        let (log, probe, stop) = (log.clone(), readiness.clone(), shutdown.clone());
        let interval = config.receiver.readiness_interval;
        supervise(&mut tasks, "log-probe", async move { Ok(probe_log(&log, &probe, interval, stop, |_| {}).await?) });
    }

    let store = match (mode, parts.store) {
        (Mode::Receiver | Mode::Stream, _) => None,
        (_, Some(store)) => Some(store),
        (_, None) => Some(dingguard_store::Store::open(&config.store).await.context("cannot open the state store")?),
    };
    // The processes that keep state are those that consume the log; every consumer reports its lag into these.
    if store.is_some() {
        log.lag_gauges().register(&mut registry);
    }
    // A process that keeps state is ready only while its store answers too.
    let store_ready = store.as_ref().map(|store| {
        let flag = LogReadiness::default();
        let (store, probe, stop) = (store.clone(), flag.clone(), shutdown.clone());
        let interval = config.receiver.readiness_interval;
        supervise(&mut tasks, "store-probe", async move {
            probe_store(&store, &probe, interval, stop).await;
            Ok(())
        });
        flag
    });

    let work = crate::config::notify::work_notifier(&config.notify, clock.clone())?;
    let public_url = config
        .console
        .public_url
        .clone()
        .or_else(|| config.notify.console_url.clone())
        .unwrap_or_else(|| format!("http://{addr}"));

    let mut approvals = None;
    if let Some(store) = store.as_ref().filter(|_| matches!(mode, Mode::AllInOne | Mode::Approver)) {
        let approver = Approver::new(
            store.clone(),
            log.clone(),
            config.topics.clone(),
            config.alerting.directory.clone(),
            ApproverSettings {
                policy: config.approver.policy.clone(),
                classification: config.alerting.classification.clone(),
                grant_ttl_ms: config.approver.grant_ttl_ms,
                tick_interval: config.approver.tick_interval,
                gauge_interval: config.approver.gauge_interval,
                limits: config.approver.limits,
                notifier: work.clone().map(|w| w as Arc<dyn dingguard_notify::Notifier>),
                public_url: public_url.clone(),
                oa: match &config.approver.oa {
                    Some(oa) => Some(dingguard_approver::OaSource {
                        client: crate::config::notify::oa_client(
                            &config.notify,
                            oa.base_url.as_deref(),
                            clock.clone(),
                        )?,
                        process_codes: oa.process_codes.clone(),
                        fields: oa.fields.clone(),
                    }),
                    None => None,
                },
            },
            clock.clone(),
            &mut registry,
        );
        router = router.merge(approver.router());
        api_parts.push(approver.api_doc());
        let (runner, stop) = (approver.clone(), shutdown.clone());
        supervise(&mut tasks, "approver", async move {
            runner.run(stop).await;
            Ok(())
        });
        // The approver and the console append to the audit chain; where they run, it is verified as it grows.
        let check =
            dingguard_approver::AuditCheck::new(store.clone(), config.approver.audit_check_interval, &mut registry);
        let stop = shutdown.clone();
        supervise(&mut tasks, "audit-check", async move {
            check.run(stop).await;
            Ok(())
        });
        approvals = Some(approver);
    }
    let approver_handle = approvals.clone();

    if let Some(store) = store.as_ref().filter(|_| matches!(mode, Mode::AllInOne | Mode::Alerter)) {
        let rule_paths = config.alerting.resolve_rules(&config.data_dir)?;
        let mut settings = AlerterSettings::new(rule_paths.clone());
        settings.routes = crate::config::notify::routes(&config.notify, work.clone(), clock.clone())?;
        settings.console_url = Some(public_url.clone());
        settings.batch = config.alerting.batch;
        let alerter = Alerter::new(
            store.clone(),
            log.clone(),
            config.topics.clone(),
            config.alerting.directory.clone(),
            config.alerting.classification.clone(),
            settings,
            clock.clone(),
            &mut registry,
        )
        .context("the rules cannot be loaded")?;
        tracing::info!(
            rules = alerter.rule_count(),
            paths = %dingguard_alerter::rules_source::describe(&rule_paths),
            directory = %config.alerting.directory_source,
            "alerter ready"
        );
        let stop = shutdown.clone();
        supervise(&mut tasks, "alerter", async move {
            alerter.run(stop).await;
            Ok(())
        });
    }

    // The console serves the alert pages and, where approvals are routed, the approval pages.
    if let Some(store) = store.as_ref().filter(|_| matches!(mode, Mode::AllInOne | Mode::Approver)) {
        let mut passwords = config.console.passwords.clone();
        if passwords.is_empty() {
            let login = crate::config::console::demo_login(
                &config.data_dir,
                &config.alerting.directory,
                config.alerting.directory_source == "demo directory",
            )?;
            for user in &login.users {
                passwords.insert(user.clone(), dingguard_model::Secret::new(login.hash.clone()));
            }
            demo_login = Some((public_url.clone(), login));
        }
        let mut settings = ConsoleSettings::new(public_url.clone());
        settings.messenger = work.clone().map(|w| w as Arc<dyn dingguard_notify::Notifier>);
        settings.approvals = approvals;
        settings.trusted_proxies.clone_from(&config.console.trusted_proxies);
        if let Some(every) = config.console.poll_interval {
            settings.poll_interval = every;
        }
        let console = Console::new(
            store.clone(),
            config.alerting.directory.clone(),
            passwords.into_iter().map(|(user, hash)| (user, hash.expose().to_owned())).collect(),
            settings,
            clock.clone(),
            &mut registry,
        )
        .context("cannot start the console")?;
        router = router.merge(console.router());
        api_parts.push(console.api_doc());
        console_handle = Some(console.clone());
        let stop = shutdown.clone();
        supervise(&mut tasks, "console", async move {
            console.run(stop).await;
            Ok(())
        });
    }

    // `/metrics` moves to the internal listener when there is one; health and readiness answer on both.
    let registry = Arc::new(registry);
    if !api_parts.is_empty() {
        router = router.merge(crate::api_doc::route(crate::api_doc::document(api_parts)));
    }
    let mut app = router.merge(health_routes(readiness.clone(), store_ready.clone()));
    let ops = match ops_listener {
        Some(listener) => {
            Some((listener, health_routes(readiness.clone(), store_ready).merge(metrics_route(registry.clone()))))
        }
        None => {
            app = app.merge(metrics_route(registry.clone()));
            None
        }
    };
    let router = app.layer(dingguard_web::HeaderPolicyLayer);
    let ops_addr = ops.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
    Ok(App {
        addr,
        ops_addr,
        mode,
        shutdown,
        log,
        store,
        approver: approver_handle,
        console: console_handle,
        readiness,
        registry,
        demo_login,
        listener,
        router,
        ops,
        tasks,
        http: config.http.clone(),
        http_metrics,
    })
}

impl Mode {
    /// The name the process gives itself in its start-up lines.
    pub fn role(self) -> &'static str {
        match self {
            Mode::AllInOne => "serve",
            Mode::Receiver => "receiver",
            Mode::Alerter => "alerter",
            Mode::Approver => "approver",
            Mode::Stream => "stream",
        }
    }
}

impl App {
    /// Serves until [`App::shutdown`] is cancelled or a task stops on its own; then drains, flushes the log and
    /// returns — an error when a task failed, for the process to exit non-zero.
    pub async fn run(self) -> Result<()> {
        let Self { listener, router, ops, mut tasks, http, http_metrics, shutdown, log, .. } = self;
        if let Some((listener, ops)) = ops {
            let (metrics, stop, limits) = (http_metrics.listener("ops"), shutdown.clone(), http.clone());
            let ops = ops.layer(dingguard_web::HeaderPolicyLayer);
            supervise(&mut tasks, "ops-listener", async move {
                Ok(dingguard_web::serve(listener, ops, limits, metrics, stop).await?)
            });
        }
        let main = dingguard_web::serve(listener, router, http, http_metrics.listener("main"), shutdown.clone());
        tokio::pin!(main);
        // Every task runs until shutdown. One that stops on its own (a bug, a panic, a log that can never be written
        // again) stops the whole process with an error, for its supervisor to restart: a process that still answers
        // but no longer does its work is worse than one that is down.
        let mut failure = None;
        let served = loop {
            tokio::select! {
                served = &mut main => break served,
                Some(ended) = tasks.join_next(), if failure.is_none() => {
                    if shutdown.is_cancelled() {
                        continue;
                    }
                    let (task, outcome) = match ended {
                        Ok((task, outcome)) => (task, outcome),
                        Err(join) => ("supervisor", Err(anyhow::anyhow!("a supervised task was lost: {join}"))),
                    };
                    let cause = match outcome {
                        Ok(()) => anyhow::anyhow!("the {task} task stopped before shutdown"),
                        Err(error) => error.context(format!("the {task} task failed")),
                    };
                    tracing::error!(error = format!("{cause:#}"), task, "a background task stopped; shutting down");
                    failure = Some(cause);
                    shutdown.cancel();
                }
            }
        };
        shutdown.cancel();
        while tasks.join_next().await.is_some() {}
        log.flush(Duration::from_secs(5)).await.context("flushing the event log")?;
        served?;
        if let Some(cause) = failure {
            return Err(cause);
        }
        tracing::info!("dingguard stopped");
        Ok(())
    }
}

/// Runs `work` on `tasks` under `name`, which the supervisor reports if it ends before shutdown, or panics.
/// The file audit log poller as configured, for `serve` and for `dingguard sources backfill`.
pub fn file_audit_source(
    config: &Config,
    audit: &crate::config::sources::FileAuditConfig,
    api: Arc<dingguard_dingtalk_api::DingTalkApi>,
    log: &EventLog,
    clock: &Arc<dyn Clock>,
) -> dingguard_sources::FileAudit {
    let settings = dingguard_sources::FileAuditSettings {
        app: config.apps.first().map_or_else(dingguard_model::AppName::default_app, |a| a.name.clone()),
        corp_id: audit.corp_id.clone(),
        topic: config.topics.events.clone(),
        page_size: audit.page_size,
        backfill: audit.backfill,
        every: audit.every,
        overlap: audit.overlap,
        min_interval: Duration::from_millis(200),
        checkpoint: config.data_dir.join("file-audit.checkpoint"),
    };
    dingguard_sources::FileAudit::new(api, log.clone(), clock.clone(), settings)
}

/// Starts every configured source that fetches events from DingTalk, each under supervision.
fn start_sources(
    config: &Config,
    log: &EventLog,
    clock: &Arc<dyn Clock>,
    registry: &mut Registry,
    tasks: &mut JoinSet<(&'static str, Result<()>)>,
    shutdown: &CancellationToken,
) -> Result<()> {
    let api = match &config.sources.api {
        Some(api) => Some(Arc::new(
            dingguard_dingtalk_api::DingTalkApi::new(api.clone(), clock.clone())
                .context("cannot set up DingTalk's API client for the sources")?,
        )),
        None => None,
    };
    let app_name = config.apps.first().map_or_else(dingguard_model::AppName::default_app, |a| a.name.clone());
    if let (Some(api), Some(failed)) = (&api, &config.sources.failed_push) {
        let settings = dingguard_sources::FailedPushSettings {
            app: app_name.clone(),
            topic: config.topics.events.clone(),
            min_interval: failed.min_interval,
            every: failed.every,
            spool: config.data_dir.join("failed-push.spool"),
        };
        let source = dingguard_sources::FailedPush::new(api.clone(), log.clone(), clock.clone(), settings);
        let stop = shutdown.clone();
        supervise(tasks, "failed-push", async move {
            source.run(stop).await;
            Ok(())
        });
    }
    if let (Some(api), Some(audit)) = (&api, &config.sources.file_audit) {
        let source = file_audit_source(config, audit, api.clone(), log, clock);
        let stop = shutdown.clone();
        supervise(tasks, "file-audit", async move {
            source.run(stop).await;
            Ok(())
        });
    }
    if let (Some(api), Some(sync)) = (&api, &config.sources.directory) {
        let settings = dingguard_sources::DirectorySettings {
            app: app_name.clone(),
            topic: config.topics.events.clone(),
            corp_id: sync.corp_id.clone(),
            every: sync.every,
            min_interval: sync.min_interval,
            state: config.data_dir.join("directory-sync.json"),
        };
        let source = dingguard_sources::DirectorySync::new(api.clone(), log.clone(), clock.clone(), settings);
        let stop = shutdown.clone();
        supervise(tasks, "directory", async move {
            source.run(stop).await;
            Ok(())
        });
    }
    if let (Some(api), Some(stream)) = (&config.sources.api, &config.sources.stream) {
        let mut settings = dingguard_sources::StreamSettings::new(
            app_name,
            config.topics.events.clone(),
            api.client_id.clone(),
            api.client_secret.clone(),
            api.api_url.clone(),
        );
        settings.connections = stream.connections;
        settings.keepalive_idle = stream.keepalive_idle;
        let metrics = dingguard_sources::StreamMetrics::register(registry);
        let source = dingguard_sources::StreamConnector::new(settings, log.clone(), clock.clone(), metrics);
        let stop = shutdown.clone();
        supervise(tasks, "stream", async move {
            source.run(stop).await;
            Ok(())
        });
    }
    Ok(())
}

fn supervise(
    tasks: &mut JoinSet<(&'static str, Result<()>)>,
    name: &'static str,
    work: impl std::future::Future<Output = Result<()>> + Send + 'static,
) {
    // A drill for the supervision test, in debug builds only: the named task panics shortly after it starts.
    #[cfg(debug_assertions)]
    let drill = std::env::var("DINGGUARD_DRILL_PANIC_TASK").is_ok_and(|task| task == name);
    #[cfg(not(debug_assertions))]
    let drill = false;
    let work = async move {
        if drill {
            tokio::time::sleep(Duration::from_millis(500)).await;
            panic!("drill: the {name} task panics on purpose");
        }
        work.await
    };
    tasks.spawn(async move {
        // Its own task, so a panic comes back as this task's result, under its name.
        let outcome = match tokio::spawn(work).await {
            Ok(outcome) => outcome,
            Err(join) if join.is_panic() => {
                let payload = join.into_panic();
                dingguard_telemetry::panicked(name, payload.as_ref());
                Err(anyhow::anyhow!("panicked: {}", dingguard_telemetry::panic_message(payload.as_ref())))
            }
            Err(join) => Err(anyhow::anyhow!("was cancelled: {join}")),
        };
        (name, outcome)
    });
}

/// Probes `store` every `interval` until `shutdown`, keeping `readiness` current: a store that cannot answer
/// (a database restart, a locked file) makes `/readyz` fail until it answers again.
pub async fn probe_store(
    store: &dingguard_store::Store,
    readiness: &LogReadiness,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let ready = match tokio::time::timeout(interval.max(Duration::from_millis(50)) * 3, store.check()).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::warn!(%error, "state store is not ready");
                false
            }
            Err(_) => {
                tracing::warn!("state store readiness probe timed out");
                false
            }
        };
        if ready != readiness.is_ready() {
            tracing::info!(ready, "state store readiness changed");
        }
        readiness.set(ready);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
