//! Structured log lines: one JSON object per line, the shape `wrangler tail`
//! and Workers Logs show best.
//!
//! The core describes *what* happened ([`LogEvent`]); the Worker adds the
//! timestamp and room and prints. Fields are chosen by the code, never copied
//! from a client frame, so tickets, SDP and ICE candidates cannot leak here.

use crate::frame::push_json_string;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        match text.trim().to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "info" => Some(Level::Info),
            "warn" | "warning" => Some(Level::Warn),
            "error" => Some(Level::Error),
            _ => None,
        }
    }
}

/// One thing worth a log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    pub level: Level,
    pub event: &'static str,
    pub peer: Option<String>,
    pub fields: Vec<(&'static str, Field)>,
}

/// A field's value: the code logs text, counts and flags, nothing else.
/// (Not `serde_json::Value`: a line is written straight out, in the
/// documented order, and the Workers link no JSON tree for it.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Text(String),
    Count(u64),
    Flag(bool),
}

impl From<&str> for Field {
    fn from(text: &str) -> Self {
        Field::Text(text.to_owned())
    }
}

impl From<String> for Field {
    fn from(text: String) -> Self {
        Field::Text(text)
    }
}

impl From<bool> for Field {
    fn from(flag: bool) -> Self {
        Field::Flag(flag)
    }
}

/// Every unsigned count the code logs (each fits a `u64`).
macro_rules! count_fields {
    ($($count:ty),*) => {$(
        impl From<$count> for Field {
            fn from(count: $count) -> Self {
                Field::Count(count as u64)
            }
        }
    )*};
}

count_fields!(u16, u32, u64, usize);

impl LogEvent {
    pub fn new(level: Level, event: &'static str) -> Self {
        LogEvent {
            level,
            event,
            peer: None,
            fields: Vec::new(),
        }
    }

    pub fn peer(mut self, peer: &str) -> Self {
        self.peer = Some(peer.to_owned());
        self
    }

    pub fn field(mut self, key: &'static str, value: impl Into<Field>) -> Self {
        self.fields.push((key, value.into()));
        self
    }

    /// Renders the line: `ts`, `level`, `event`, `room`, `peer`, then the fields.
    pub fn render(&self, ts_ms: u64, room: Option<&str>) -> String {
        let mut line = format!(
            r#"{{"ts":{ts_ms},"level":"{}","event":"#,
            self.level.as_str()
        );
        push_json_string(&mut line, self.event);
        let standard = [("room", room), ("peer", self.peer.as_deref())];
        for (key, value) in standard {
            if let Some(value) = value {
                push_key(&mut line, key);
                push_json_string(&mut line, value);
            }
        }
        for (key, value) in &self.fields {
            push_key(&mut line, key);
            match value {
                Field::Text(text) => push_json_string(&mut line, text),
                Field::Count(count) => line.push_str(&count.to_string()),
                Field::Flag(flag) => line.push_str(if *flag { "true" } else { "false" }),
            }
        }
        line.push('}');
        line
    }
}

fn push_key(line: &mut String, key: &str) {
    line.push(',');
    push_json_string(line, key);
    line.push(':');
}

/// Lets one line of a repeated kind through per window and counts the rest,
/// so a client that repeats a refused request cannot turn each refusal into
/// a warn line. The line that gets through says how many were held back.
#[derive(Debug, Clone, Default)]
pub struct Sampler {
    window_start_ms: Option<u64>,
    held_back: u32,
}

/// The window of a [`Sampler`]: one line per kind per isolate per 10 s.
pub const SAMPLE_WINDOW_MS: u64 = 10_000;

impl Sampler {
    /// `Some(held back since the last line)` when a line may go out now.
    pub fn admit(&mut self, now_ms: u64) -> Option<u32> {
        match self.window_start_ms {
            Some(start) if now_ms.saturating_sub(start) < SAMPLE_WINDOW_MS => {
                self.held_back = self.held_back.saturating_add(1);
                None
            }
            _ => {
                self.window_start_ms = Some(now_ms);
                Some(std::mem::take(&mut self.held_back))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_json_object_with_the_standard_fields() {
        let line = LogEvent::new(Level::Info, "open")
            .peer("alice")
            .field("bytes", 12u64)
            .field("proven", true)
            .field("why", "a \"quoted\"\nline")
            .render(1_700_000_000_000, Some("room1"));
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["ts"], 1_700_000_000_000u64);
        assert_eq!(v["level"], "info");
        assert_eq!(v["event"], "open");
        assert_eq!(v["room"], "room1");
        assert_eq!(v["peer"], "alice");
        assert_eq!(v["bytes"], 12);
        assert_eq!(v["proven"], true);
        assert_eq!(v["why"], "a \"quoted\"\nline");
        assert!(line.starts_with(
            r#"{"ts":1700000000000,"level":"info","event":"open","room":"room1","peer":"alice","#
        ));
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_sampler_lets_one_line_per_window_through_and_counts_the_rest() {
        let mut sampler = Sampler::default();
        assert_eq!(sampler.admit(0), Some(0));
        let through = (0..6_000u64)
            .filter_map(|i| sampler.admit(i * 10))
            .collect::<Vec<_>>();
        // A minute of refusals, one every 10 ms: six lines, not 6,000.
        assert_eq!(through.len(), 5, "{through:?}");
        assert_eq!(through[0], 1_000, "held back in the first window");
    }

    #[test]
    fn levels_parse_case_insensitively() {
        assert_eq!(Level::parse("WARN"), Some(Level::Warn));
        assert_eq!(Level::parse("loud"), None);
        assert!(Level::Debug < Level::Error);
    }
}
