//! Which notifiers hear of which alerts, and the notification each one gets.

use std::sync::Arc;

use dingguard_notify::{Markdown, Notification, Notifier, RobotNotifier};
use dingguard_rules::Severity;
use dingguard_store::{Channel, NewAlert};

/// A notifier and the least severe alert it is told about. Its name is its outbox channel.
#[derive(Clone)]
pub struct Route {
    pub notifier: Arc<dyn Notifier>,
    pub min_severity: Severity,
    /// Robots fold overflow into digests that must be flushed once capacity returns.
    pub robot: Option<Arc<RobotNotifier>>,
    /// DingTalk user ids for work notifications.
    pub recipients: Vec<String>,
}

impl Route {
    pub fn new(notifier: Arc<dyn Notifier>, min_severity: Severity) -> Self {
        Self { notifier, min_severity, robot: None, recipients: Vec::new() }
    }

    pub fn robot(robot: Arc<RobotNotifier>, min_severity: Severity) -> Self {
        Self { notifier: robot.clone(), min_severity, robot: Some(robot), recipients: Vec::new() }
    }

    pub fn channel(&self) -> Channel {
        Channel::Notifier(self.notifier.name().to_owned())
    }
}

/// What the security team reads: minimal, no more personal data than the alert needs, the alert id in the text so
/// DingTalk's same-content-once-a-day rule never swallows it.
pub(crate) fn notification(alert: &NewAlert, route: &Route, console_url: Option<&str>) -> Notification {
    let articles = alert.pdpa.join(", ");
    let link = console_url.map(|base| format!("{}/alerts/{}", base.trim_end_matches('/'), alert.id));
    // The message holds field values from outside (group titles, file names): it goes in as text, never markup.
    let markdown = Markdown::new()
        .raw("### [")
        .text(&alert.severity.as_str().to_uppercase())
        .raw("] ")
        .text(&alert.rule)
        .raw("\n\n")
        .text(&alert.message)
        .raw("\n\nMay implicate PDPA (Law 8/2005) art. ")
        .text(&articles)
        .raw(".\n\nAlert `")
        .text(&alert.id)
        .raw("`");
    Notification {
        id: format!("{}-{}", alert.id, route.notifier.name()),
        title: format!("[{}] {}", alert.severity.as_str().to_uppercase(), alert.rule),
        severity: alert.severity.as_str().to_owned(),
        markdown,
        link,
        recipients: route.recipients.clone(),
    }
}
