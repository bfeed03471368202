//! What a session asks the runtime for, and its encoding in the CollectTracing commands.

use crate::ipc::protocol::PayloadWriter;

/// One EventPipe provider to enable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub name: String,
    pub keywords: u64,
    /// 0 LogAlways .. 5 Verbose.
    pub level: u32,
    /// `key=value;key2=value2`, passed to the provider's enable callback.
    pub arguments: Option<String>,
}

impl Provider {
    pub fn new(name: impl Into<String>, keywords: u64, level: u32) -> Self {
        Provider {
            name: name.into(),
            keywords,
            level,
            arguments: None,
        }
    }

    /// Builds the argument string from pairs, quoting a value that contains `;` or `=` (the
    /// runtime splits on those outside double quotes).
    pub fn with_arguments<K: AsRef<str>, V: AsRef<str>>(mut self, args: &[(K, V)]) -> Self {
        let quote = |s: &str| {
            if s.contains(';') || s.contains('=') {
                format!("\"{s}\"")
            } else {
                s.to_string()
            }
        };
        let text: Vec<String> = args
            .iter()
            .map(|(k, v)| format!("{}={}", quote(k.as_ref()), quote(v.as_ref())))
            .collect();
        self.arguments = Some(text.join(";"));
        self
    }
}

/// The whole session request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub circular_buffer_mb: u32,
    pub request_rundown: bool,
    pub providers: Vec<Provider>,
}

impl SessionConfig {
    /// The settings counters tools use: 256 MB buffer, no rundown.
    pub fn new(providers: Vec<Provider>) -> Self {
        SessionConfig {
            circular_buffer_mb: 256,
            request_rundown: false,
            providers,
        }
    }
}

/// NetTrace; the only format this crate reads.
const FORMAT_NETTRACE: u32 = 1;

fn write_providers(w: &mut PayloadWriter, providers: &[Provider]) {
    w.u32(providers.len() as u32);
    for p in providers {
        w.u64(p.keywords).u32(p.level).string(Some(&p.name));
        w.string(p.arguments.as_deref());
    }
}

/// CollectTracing2: buffer, format, rundown flag, providers.
pub fn encode_collect_tracing2(c: &SessionConfig) -> Vec<u8> {
    let mut w = PayloadWriter::new();
    w.u32(c.circular_buffer_mb)
        .u32(FORMAT_NETTRACE)
        .u8(u8::from(c.request_rundown));
    write_providers(&mut w, &c.providers);
    w.into_bytes()
}

/// CollectTracing (the first version; rundown is implied by the runtime).
pub fn encode_collect_tracing(c: &SessionConfig) -> Vec<u8> {
    let mut w = PayloadWriter::new();
    w.u32(c.circular_buffer_mb).u32(FORMAT_NETTRACE);
    write_providers(&mut w, &c.providers);
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_tracing2_matches_the_documented_counters_request() {
        let c = SessionConfig::new(vec![Provider::new("System.Runtime", 0, 4)
            .with_arguments(&[("EventCounterIntervalSec", "1")])]);
        let p = encode_collect_tracing2(&c);
        // 135-byte message = 20-byte header + 115-byte payload.
        assert_eq!(p.len(), 115);
        assert_eq!(&p[..13], &[0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(&p[13..25], &[0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0]);
        assert_eq!(&p[25..29], &[15, 0, 0, 0]);
        assert_eq!(&p[59..63], &[26, 0, 0, 0]);
    }

    #[test]
    fn argument_values_with_separators_are_quoted() {
        let p = Provider::new("System.Diagnostics.Metrics", 2, 4).with_arguments(&[
            ("SessionId", "SHARED"),
            ("Metrics", "A\\x;B"),
            ("Base2ExponentialHistogram", "scale=4"),
        ]);
        assert_eq!(
            p.arguments.as_deref(),
            Some("SessionId=SHARED;Metrics=\"A\\x;B\";Base2ExponentialHistogram=\"scale=4\"")
        );
    }
}
