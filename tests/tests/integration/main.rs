//! The workspace's integration tests, one binary: the built `dingguard` as a child process, the services in-process
//! on port 0, a real Kafka-protocol broker, SQLite files, the machine's PostgreSQL and a headless Chromium.

mod alerter_faults;
mod alerts;
mod approval_browser;
mod approval_flow;
mod approvals;
mod arrival_order;
mod attacks_approvals;
mod attacks_console;
mod attacks_serving;
mod audit;
mod binary;
mod broker_hang;
mod console_live;
mod deploy_metrics;
mod directory_sync;
mod event_time;
mod eventlog_contract;
mod faults;
mod full_disk;
mod fuzz;
mod hostile_events;
mod layout;
mod outbound_text;
mod pages_hostile;
mod rebalance;
mod receiver;
mod replicas;
mod secrets;
mod source_kills;
mod sources;
mod state_growth;
mod supervision;
mod topics;
