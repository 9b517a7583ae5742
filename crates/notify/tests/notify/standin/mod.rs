//! Local stand-ins for DingTalk's robot and work-notification endpoints and for a webhook receiver.

use std::sync::Arc;
use std::time::Duration;

use dingguard_model::{Clock, ManualClock, SystemClock};
use dingguard_notify::{BoxFuture, Notification, Sleeper};
use parking_lot::Mutex;

pub mod hook;
pub mod robot;
pub mod work;

pub use dingguard_testkit::standin::serve;

/// A clock at the real time that moves only when told to, shared by a notifier and its stand-in.
pub fn clock() -> ManualClock {
    ManualClock::new(SystemClock.now_ms())
}

pub fn shared(clock: &ManualClock) -> Arc<dyn Clock> {
    Arc::new(clock.clone())
}

pub fn alert(i: usize) -> Notification {
    Notification {
        id: format!("alert-{i:03}"),
        title: format!("External member joined group #{i}"),
        severity: ["high", "critical"][i % 2].to_owned(),
        markdown: dingguard_notify::Markdown::new()
            .raw("**Group:** ")
            .text(&format!("g-{i}"))
            .raw("\n\n**Member:** external"),
        link: Some(format!("https://dingguard.example/alerts/alert-{i:03}")),
        recipients: vec!["u1".to_owned(), "u2".to_owned()],
    }
}

/// Records the backoff instead of sleeping through it.
#[derive(Default)]
pub struct RecordingSleeper(pub Mutex<Vec<Duration>>);

impl Sleeper for RecordingSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        self.0.lock().push(duration);
        Box::pin(async {})
    }
}
