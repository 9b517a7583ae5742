//! `dingguard serve` and the single-service modes: load the settings, bind the listeners, build the application
//! through the composition root, print where it listens, and run it until a signal.

use std::path::Path;

use anyhow::{Context, Result};
use dingguard::app::{self, Mode, Parts, describe};
use dingguard::config::{Config, LogFormat, ProcessEnv};

pub async fn run(config_file: Option<&Path>, mode: Mode) -> Result<()> {
    let config = Config::load(config_file, &ProcessEnv, matches!(mode, Mode::AllInOne | Mode::Receiver))?;
    if mode == Mode::Stream && config.sources.stream.is_none() {
        anyhow::bail!(
            "`dingguard stream` needs the stream source: set DINGGUARD_SOURCES=stream (or add \"stream\" to \
             [sources] enabled) with DINGGUARD_DINGTALK_CLIENT_ID and DINGGUARD_DINGTALK_CLIENT_SECRET"
        );
    }
    dingguard_telemetry::init(match config.log_format {
        LogFormat::Json => dingguard_telemetry::Format::Json,
        LogFormat::Text => dingguard_telemetry::Format::Text,
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let ops_listener = match config.ops_listen {
        Some(at) => Some(tokio::net::TcpListener::bind(at).await.with_context(|| format!("cannot listen on {at}"))?),
        None => None,
    };
    let app = app::build(&config, mode, listener, ops_listener, Parts::default()).await?;
    let (addr, role) = (app.addr, mode.role());
    tracing::info!(%addr, role, backend = app.log.backend(), data_dir = %config.data_dir.display(), "dingguard started");
    if let Some(demo) = config.demo.as_ref().filter(|_| !matches!(mode, Mode::Alerter | Mode::Stream)) {
        println!(
            "\nNo DingTalk credentials are configured, so demo ones were generated ({}).\n\
             Send a simulated callback from another terminal:\n\n  \
             DINGGUARD_DINGTALK_TOKEN={} DINGGUARD_DINGTALK_AES_KEY={} DINGGUARD_DINGTALK_APP_KEY={} \\\n    \
             cargo run --release -q -p dingguard -- simulate --url http://{addr}/dingtalk/callback --scenario external-member\n",
            demo.file.display(),
            demo.token,
            demo.aes_key,
            demo.app_key
        );
    }
    if let Some((url, login)) = &app.demo_login {
        println!("Security console: {url}/login  (demo sign-in: user {} password {})", login.user, login.password);
        if login.users.len() > 1 {
            println!(
                "  The same demo password signs in every demo user, e.g. the DPO and department heads: {url}/approvals"
            );
        }
    }
    if let Some(ops) = app.ops_addr {
        println!("dingguard {role} serves /metrics on http://{ops}");
    }
    // Printed last: scripts and tests wait for this line.
    println!("dingguard {role} listening on http://{addr} ({})", describe(&config.backend));

    let signal = app.shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; finishing in-flight work");
        signal.cancel();
    });
    app.run().await
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
