//! The robot's rate budget and the queue of alerts waiting for a digest.

use std::collections::VecDeque;

use sha2::{Digest as _, Sha256};

use crate::{Notification, inert, is_plain_url, one_line, truncate_bytes};

const WINDOW_MS: i64 = 60_000;
/// DingTalk holds a robot for 10 minutes once it goes over its limit (https://open.dingtalk.com/document/development/custom-robots-send-group-messages).
const THROTTLE_PENALTY_MS: i64 = 600_000;
/// DingTalk documents no size limit for robot markdown; staying well under the 20 000 bytes it allows a text
/// message keeps every message, digest or not, deliverable in one piece.
pub(super) const TEXT_BUDGET: usize = 12_000;
const TITLE_MAX: usize = 200;

pub(super) struct Pending {
    seq: u64,
    queued_at_ms: i64,
    notification: Notification,
}

/// One sliding window of send times, the penalty from a server-side throttle, and the held alerts.
pub(super) struct RobotState {
    per_minute: usize,
    sent_at: VecDeque<i64>,
    blocked_until_ms: i64,
    pending: VecDeque<Pending>,
    next_seq: u64,
}

impl RobotState {
    pub fn new(per_minute: usize) -> Self {
        Self { per_minute, sent_at: VecDeque::new(), blocked_until_ms: i64::MIN, pending: VecDeque::new(), next_seq: 0 }
    }

    fn prune(&mut self, now_ms: i64) {
        while self.sent_at.front().is_some_and(|&t| now_ms - t >= WINDOW_MS) {
            self.sent_at.pop_front();
        }
    }

    pub fn has_capacity(&mut self, now_ms: i64) -> bool {
        self.prune(now_ms);
        now_ms >= self.blocked_until_ms && self.sent_at.len() < self.per_minute
    }

    /// Messages that may still go out in the current window.
    pub fn remaining(&mut self, now_ms: i64) -> usize {
        self.prune(now_ms);
        if now_ms < self.blocked_until_ms { 0 } else { self.per_minute.saturating_sub(self.sent_at.len()) }
    }

    /// Every request counts against the window, failed or not: DingTalk counts what reaches it, and a request
    /// that timed out may have reached it.
    pub fn reserve(&mut self, now_ms: i64) {
        self.sent_at.push_back(now_ms);
    }

    pub fn block(&mut self, now_ms: i64) {
        self.blocked_until_ms = self.blocked_until_ms.max(now_ms.saturating_add(THROTTLE_PENALTY_MS));
    }

    /// When a message may next be sent.
    pub fn next_capacity_ms(&mut self, now_ms: i64) -> i64 {
        self.prune(now_ms);
        let window = if self.sent_at.len() < self.per_minute {
            now_ms
        } else {
            self.sent_at[self.sent_at.len() - self.per_minute] + WINDOW_MS
        };
        window.max(self.blocked_until_ms)
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn enqueue(&mut self, notification: Notification, now_ms: i64) -> u64 {
        let pending = self.pending(notification, now_ms);
        let seq = pending.seq;
        self.pending.push_back(pending);
        seq
    }

    /// For an alert that was refused after it was taken off the queue: it is older than anything queued since.
    pub fn enqueue_front(&mut self, notification: Notification, now_ms: i64) {
        let pending = self.pending(notification, now_ms);
        self.pending.push_front(pending);
    }

    fn pending(&mut self, notification: Notification, queued_at_ms: i64) -> Pending {
        self.next_seq += 1;
        Pending { seq: self.next_seq, queued_at_ms, notification }
    }

    pub fn remove(&mut self, seq: u64) {
        self.pending.retain(|p| p.seq != seq);
    }

    /// Puts a batch whose digest failed back at the head, in its original order.
    pub fn restore(&mut self, batch: DigestBatch) {
        for pending in batch.items.into_iter().rev() {
            self.pending.push_front(pending);
        }
    }

    /// The oldest alerts whose lines fit one digest; at least one, so the queue always drains.
    pub fn take_batch(&mut self) -> DigestBatch {
        let mut batch = DigestBatch { items: Vec::new(), lines: Vec::new() };
        let mut used = 0;
        while let Some(next) = self.pending.front() {
            let line = line(&next.notification);
            if !batch.items.is_empty() && used + line.len() + 1 > TEXT_BUDGET {
                break;
            }
            used += line.len() + 1;
            batch.lines.push(line);
            batch.items.push(self.pending.pop_front().expect("front exists"));
        }
        batch
    }
}

/// A digest of `items` (from the front, as many as fit one message), for callers that keep their own durable
/// queue and only need the robot to post.
pub(super) fn batch_of(items: &[Notification], now_ms: i64) -> DigestBatch {
    let mut batch = DigestBatch { items: Vec::new(), lines: Vec::new() };
    let mut used = 0;
    for (seq, n) in items.iter().enumerate() {
        let line = line(n);
        if !batch.items.is_empty() && used + line.len() + 1 > TEXT_BUDGET {
            break;
        }
        used += line.len() + 1;
        batch.lines.push(line);
        batch.items.push(Pending { seq: seq as u64, queued_at_ms: now_ms, notification: n.clone() });
    }
    batch
}

pub(super) struct DigestBatch {
    items: Vec<Pending>,
    lines: Vec<String>,
}

impl DigestBatch {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.items.iter().any(|p| p.seq == seq)
    }

    /// `(title, markdown text, msgUuid)`. The uuid derives from the alert ids, so resending the same batch after
    /// a timeout is recognised by DingTalk as the same message.
    pub fn render(&self, per_minute: usize) -> (String, String, String) {
        let since = self.items.iter().map(|p| p.queued_at_ms).min().unwrap_or_default();
        let heading = format!("{} alerts since {}", self.items.len(), format_utc(since));
        let text = format!(
            "### {heading}\n\n{}\n\n_The robot's limit of {per_minute} messages a minute was reached, so these \
             alerts come as one digest._",
            self.lines.join("\n")
        );
        let mut hasher = Sha256::new();
        for pending in &self.items {
            hasher.update(pending.notification.id.as_bytes());
            hasher.update(b"\n");
        }
        let uuid = format!("digest-{}", &hex::encode(hasher.finalize())[..32]);
        (heading, text, uuid)
    }
}

fn line(n: &Notification) -> String {
    let severity = one_line(&n.severity, 32);
    let title = one_line(&n.title, TITLE_MAX);
    let title = match &n.link {
        Some(link) if is_plain_url(link) => format!("[{title}]({link})"),
        _ => title,
    };
    format!("- **{severity}** {title} · `{}`", inert(&n.id))
}

fn format_utc(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// The single-alert message, cut to the text budget.
pub(super) fn render_single(n: &Notification) -> (String, String) {
    let title = one_line(&n.title, TITLE_MAX);
    let severity = one_line(&n.severity, 32);
    let link = match &n.link {
        Some(link) if is_plain_url(link) => format!("\n\n[查看详情]({link})"),
        _ => String::new(),
    };
    let head = format!("#### {title}\n\n**{severity}** · `{}`\n\n", inert(&n.id));
    let room = TEXT_BUDGET.saturating_sub(head.len() + link.len() + 3);
    let body = truncate_bytes(n.markdown.as_str(), room);
    let ellipsis = if body.len() < n.markdown.len() { "…" } else { "" };
    (format!("[{severity}] {title}"), format!("{head}{body}{ellipsis}{link}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(i: usize) -> Notification {
        Notification {
            id: format!("a-{i}"),
            title: format!("External member added #{i}"),
            severity: "high".to_owned(),
            markdown: crate::Markdown::new(),
            link: None,
            recipients: vec![],
        }
    }

    #[test]
    fn the_window_slides_and_the_penalty_holds() {
        let mut state = RobotState::new(2);
        assert!(state.has_capacity(0));
        state.reserve(0);
        state.reserve(10_000);
        assert!(!state.has_capacity(59_999));
        assert_eq!(state.next_capacity_ms(30_000), 60_000);
        assert!(state.has_capacity(60_000));
        state.block(60_000);
        assert!(!state.has_capacity(600_000));
        assert_eq!(state.next_capacity_ms(60_000), 660_000);
        assert!(state.has_capacity(660_000));
    }

    #[test]
    fn batches_are_bounded_and_restorable() {
        let mut state = RobotState::new(20);
        for i in 0..500 {
            state.enqueue(Notification { title: "x".repeat(150), ..alert(i) }, i64::try_from(i).unwrap());
        }
        let batch = state.take_batch();
        assert!(batch.len() > 10 && batch.len() < 500);
        let (_, text, uuid) = batch.render(20);
        assert!(text.len() <= TEXT_BUDGET + 200, "{}", text.len());
        assert!(uuid.starts_with("digest-"));
        let taken = batch.len();
        state.restore(batch);
        assert_eq!(state.pending_len(), 500);
        assert!(state.take_batch().contains(1), "restored batch keeps its order");
        assert_eq!(state.pending_len(), 500 - taken);
    }

    #[test]
    fn digests_list_every_alert_with_its_severity() {
        let mut state = RobotState::new(20);
        for i in 0..3 {
            state.enqueue(alert(i), 1_700_000_000_000);
        }
        state.enqueue(Notification { link: Some("https://x/a".into()), title: "multi\nline".into(), ..alert(3) }, 0);
        let (title, text, _) = state.take_batch().render(20);
        assert_eq!(title, "4 alerts since 1970-01-01 00:00:00 UTC");
        assert!(text.contains("- **high** External member added ＃2 · `a-2`"), "titles are disarmed: {text}");
        assert!(text.contains("- **high** [multi line](https://x/a) · `a-3`"));
    }

    #[test]
    fn single_messages_are_cut_to_the_budget_and_hostile_links_dropped() {
        let n = Notification {
            markdown: crate::Markdown::new().text(&"澳".repeat(10_000)),
            link: Some("https://x/a) [y](https://evil".into()),
            ..alert(1)
        };
        let (title, text) = render_single(&n);
        assert_eq!(title, "[high] External member added ＃1");
        assert!(text.len() <= TEXT_BUDGET && text.ends_with('…') && !text.contains("evil"));
    }
}
