//! An event's own time, as a payload states it, and whether to believe it.
//!
//! DingTalk sends milliseconds, but some payloads (and its documentation, once) use seconds, as numbers or as
//! strings. A ten-digit value is seconds: no millisecond count after 1973 has fewer than twelve digits. A time
//! before 2000 or more than a day after the event reached us is not believed; the event is then dated when it was
//! received, with a mark that says so, rather than in 1970 or in the far future.

/// 2000-01-01T00:00:00Z.
pub const EARLIEST_PLAUSIBLE_MS: i64 = 946_684_800_000;
/// How far ahead of its arrival an event's own time may be.
pub const LARGEST_LEAD_MS: i64 = 24 * 3_600_000;

/// Where an event's time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeSource {
    /// The payload's own time.
    Event,
    /// The payload had no believable time; this is when the event was received.
    Received,
}

impl TimeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Received => "received",
        }
    }
}

/// A payload time in milliseconds: seconds are scaled, anything implausible is replaced by `received_ms`.
pub fn event_time(stated: Option<i64>, received_ms: i64) -> (i64, TimeSource) {
    let ms = stated.map(|v| if v.unsigned_abs() < 100_000_000_000 { v.saturating_mul(1000) } else { v });
    match ms {
        Some(ms) if ms >= EARLIEST_PLAUSIBLE_MS && ms <= received_ms.saturating_add(LARGEST_LEAD_MS) => {
            (ms, TimeSource::Event)
        }
        _ => (received_ms, TimeSource::Received),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_547_200_000; // 2025-12-01

    #[test]
    fn seconds_and_milliseconds_are_both_read_right() {
        assert_eq!(event_time(Some(1_764_540_000_000), NOW), (1_764_540_000_000, TimeSource::Event));
        assert_eq!(
            event_time(Some(1_764_540_000), NOW),
            (1_764_540_000_000, TimeSource::Event),
            "ten digits are seconds"
        );
    }

    #[test]
    fn implausible_times_become_the_receive_time() {
        for stated in [None, Some(0), Some(-1), Some(-380_000_000_000_000), Some(i64::MIN), Some(i64::MAX), Some(5)] {
            assert_eq!(event_time(stated, NOW), (NOW, TimeSource::Received), "{stated:?}");
        }
        assert_eq!(event_time(Some(NOW + LARGEST_LEAD_MS + 1), NOW).1, TimeSource::Received, "more than a day ahead");
        assert_eq!(event_time(Some(NOW + LARGEST_LEAD_MS), NOW).1, TimeSource::Event);
        assert_eq!(event_time(Some(EARLIEST_PLAUSIBLE_MS - 1), NOW).1, TimeSource::Received, "before 2000");
    }
}
