//! `dingguard`: the services (alone or all in one process) and the operator tools.

mod audit_cmd;
mod dlq_cmd;
mod log_dump;
mod rules_cmd;
mod serve;
mod simulate;
mod sources_cmd;
mod standin_cmd;
mod topics_cmd;
mod users_cmd;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

// Callbacks are allocated on request threads and freed on the log writer's; glibc's arenas serialise that on a
// lock, mimalloc's per-thread heaps do not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "dingguard", version, about = "Watches DingTalk for breaches of Macau's Personal Data Protection Act")]
struct Cli {
    /// TOML configuration file; DINGGUARD_… environment variables override it.
    #[arg(long, global = true, env = "DINGGUARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every service in one process, on the embedded event log unless Kafka is configured.
    Serve,
    /// The receiver alone: DingTalk callbacks into the event log.
    Receiver,
    /// The alerter alone: events from the log judged by the rules, alerts raised.
    Alerter,
    /// The approval router alone: download requests, decisions, grants.
    Approver,
    /// DingTalk's Stream mode (and any other configured source) alone: events fetched into the log, for a company
    /// without a public endpoint.
    Stream,
    /// The directory's users and their API tokens.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Work with rule files.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Send callbacks signed and encrypted exactly as DingTalk does.
    Simulate(simulate::SimulateArgs),
    /// Verify or export the tamper-evident audit chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// A stand-in for DingTalk's servers with a demo company, to point the sources at.
    Standin {
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:9080")]
        listen: std::net::SocketAddr,
    },
    /// The event log's topics.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// The records the alerter could not judge, and their way back.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Work with the sources that fetch events from DingTalk.
    Sources {
        #[command(subcommand)]
        command: SourcesCommand,
    },
    /// Inspect the event log.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Validate rule files and run the tests written inside them.
    Test {
        /// Rule files or directories; defaults to the configured rules.
        paths: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Print the directory's active user ids, one a line.
    List,
    /// Issue an API bearer token for a user and print it.
    Token { user_id: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every link of the chain; names the first broken entry.
    Verify,
    /// Print every entry, hashes included, as JSON lines.
    Export,
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// Create the topics as configured; refuse, naming what differs, when an existing one does not match.
    Ensure,
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Print every dead letter as a JSON line: its id, type, error, failures and where it came from.
    List {
        /// Only those whose id, type or error contains this.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Put the dead letters not replayed yet back on the topic they came from.
    Redrive {
        /// Only those whose id, type or error contains this.
        #[arg(long)]
        filter: Option<String>,
    },
}

#[derive(Subcommand)]
enum SourcesCommand {
    /// Read the file audit log from a past point up to now into the event log.
    Backfill {
        /// From when: a date (2026-11-01), a time (2026-11-01T08:00:00Z) or a span back from now (36h, 7d).
        #[arg(long)]
        since: String,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Print every record of a topic as JSON lines (partition, offset, key, headers, value).
    Dump {
        /// Topic to print; defaults to the events topic.
        #[arg(long)]
        topic: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dingguard: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve => serve::run(cli.config.as_deref(), dingguard::app::Mode::AllInOne).await,
        Command::Receiver => serve::run(cli.config.as_deref(), dingguard::app::Mode::Receiver).await,
        Command::Alerter => serve::run(cli.config.as_deref(), dingguard::app::Mode::Alerter).await,
        Command::Approver => serve::run(cli.config.as_deref(), dingguard::app::Mode::Approver).await,
        Command::Stream => serve::run(cli.config.as_deref(), dingguard::app::Mode::Stream).await,
        Command::Users { command: UsersCommand::List } => users_cmd::list(cli.config.as_deref()),
        Command::Users { command: UsersCommand::Token { user_id } } => {
            users_cmd::token(cli.config.as_deref(), &user_id).await
        }
        Command::Rules { command: RulesCommand::Test { paths } } => rules_cmd::test(cli.config.as_deref(), paths),
        Command::Simulate(args) => simulate::run(args).await,
        Command::Audit { command: AuditCommand::Verify } => audit_cmd::verify(cli.config.as_deref()).await,
        Command::Audit { command: AuditCommand::Export } => audit_cmd::export(cli.config.as_deref()).await,
        Command::Log { command: LogCommand::Dump { topic } } => log_dump::run(cli.config.as_deref(), topic).await,
        Command::Standin { listen } => standin_cmd::run(listen).await,
        Command::Topics { command: TopicsCommand::Ensure } => topics_cmd::ensure(cli.config.as_deref()).await,
        Command::Dlq { command: DlqCommand::List { filter } } => {
            dlq_cmd::list(cli.config.as_deref(), filter.as_deref()).await
        }
        Command::Dlq { command: DlqCommand::Redrive { filter } } => {
            dlq_cmd::redrive(cli.config.as_deref(), filter.as_deref()).await
        }
        Command::Sources { command: SourcesCommand::Backfill { since } } => {
            sources_cmd::backfill(cli.config.as_deref(), &since).await
        }
    }
}
