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

/// What the runtime does when the session's buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferingMode {
    /// The circular buffer drops events (every runtime; the default).
    Drop,
    /// The writing threads wait for the reader instead (CollectTracing6, .NET 11 and later).
    /// Asked for with CollectTracing6; a runtime that does not know the command gets the older
    /// commands in Drop mode (see [`crate::eventpipe::Session::buffering`]).
    Block,
}

impl BufferingMode {
    fn wire(self) -> u32 {
        match self {
            BufferingMode::Drop => 0,
            BufferingMode::Block => 1,
        }
    }
}

/// The whole session request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub circular_buffer_mb: u32,
    pub request_rundown: bool,
    pub providers: Vec<Provider>,
    /// Asked for only with [`BufferingMode::Block`]: the older commands cannot carry it.
    pub buffering: BufferingMode,
    /// Stacks with every event (CollectTracing6 carries it; the older commands always walk).
    pub stackwalk: bool,
}

impl SessionConfig {
    /// The settings counters tools use: 256 MB buffer, no rundown.
    pub fn new(providers: Vec<Provider>) -> Self {
        SessionConfig {
            circular_buffer_mb: 256,
            request_rundown: false,
            providers,
            buffering: BufferingMode::Drop,
            stackwalk: true,
        }
    }
}

/// The runtime's classic rundown keywords (what `request_rundown` means in CollectTracing2).
const RUNDOWN_KEYWORD: u64 = 0x8002_0139;
/// CollectTracing5+ session type: streamed over the IPC connection.
const SESSION_IPC_STREAM: u32 = 0;

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

/// CollectTracing6 (.NET 11): session type, buffer, format, rundown keywords, stackwalk flag,
/// providers each with an (empty) event filter, then the buffering mode.
pub fn encode_collect_tracing6(c: &SessionConfig) -> Vec<u8> {
    let mut w = PayloadWriter::new();
    w.u32(SESSION_IPC_STREAM)
        .u32(c.circular_buffer_mb)
        .u32(FORMAT_NETTRACE)
        .u64(if c.request_rundown {
            RUNDOWN_KEYWORD
        } else {
            0
        })
        .u8(u8::from(c.stackwalk));
    w.u32(c.providers.len() as u32);
    for p in &c.providers {
        w.u64(p.keywords).u32(p.level).string(Some(&p.name));
        w.string(p.arguments.as_deref());
        // Event filter: deny-list of no ids = every event.
        w.u8(0).u32(0);
    }
    w.u32(c.buffering.wire());
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
    fn collect_tracing6_layout() {
        let mut c = SessionConfig::new(vec![Provider::new("AB", 0x1980001, 5)]);
        c.circular_buffer_mb = 64;
        c.request_rundown = true;
        c.stackwalk = false;
        c.buffering = BufferingMode::Block;
        let p = encode_collect_tracing6(&c);
        let mut want = Vec::new();
        want.extend(0u32.to_le_bytes()); // streaming session
        want.extend(64u32.to_le_bytes());
        want.extend(1u32.to_le_bytes()); // nettrace
        want.extend(0x8002_0139u64.to_le_bytes());
        want.push(0); // no stacks
        want.extend(1u32.to_le_bytes()); // one provider
        want.extend(0x1980001u64.to_le_bytes());
        want.extend(5u32.to_le_bytes());
        want.extend(3u32.to_le_bytes());
        want.extend([b'A', 0, b'B', 0, 0, 0]);
        want.extend(0u32.to_le_bytes()); // no arguments
        want.push(0); // filter: deny-list
        want.extend(0u32.to_le_bytes()); // of no ids
        want.extend(1u32.to_le_bytes()); // Block
        assert_eq!(p, want);
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
