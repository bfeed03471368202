//! `--on-exception [TYPE]`: first-chance exceptions from the runtime's own events
//! (`Microsoft-Windows-DotNETRuntime`, keyword `Exception`, `ExceptionThrown_V1` id 80), each
//! sent as its type name and message over a channel.

use std::sync::mpsc::{channel, Receiver};

use anyhow::Context;
use dn_core::eventpipe::Session;
use dn_nettrace::Value;

use crate::runtime_events::{self, Feed};

const EXCEPTION_KEYWORD: u64 = 0x8000;
const EXCEPTION_THROWN: u32 = 80;

/// One thrown exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thrown {
    pub type_name: String,
    pub message: String,
}

/// True if `wanted` (a full name, or the name without its namespace) names `type_name`;
/// `None` matches every type.
pub fn matches(wanted: Option<&str>, type_name: &str) -> bool {
    match wanted {
        None => true,
        Some(w) => type_name == w || type_name.rsplit('.').next() == Some(w),
    }
}

/// A running session; stopped on drop.
pub struct ExceptionWatch {
    _session: Session,
    pub rx: Receiver<Thrown>,
}

impl ExceptionWatch {
    pub fn start(pid: i32) -> anyhow::Result<ExceptionWatch> {
        let (tx, rx) = channel();
        let session = runtime_events::start(pid, EXCEPTION_KEYWORD, move |feed| {
            let Feed::Event(ev) = feed else { return };
            if ev.event_id() != EXCEPTION_THROWN {
                return;
            }
            let fields = ev.decode().unwrap_or_default();
            let text = |name: &str| {
                fields.iter().find_map(|(k, v)| match v {
                    Value::String(s) if k == name => Some(s.clone()),
                    _ => None,
                })
            };
            let thrown = match (text("ExceptionType"), text("ExceptionMessage")) {
                (Some(type_name), message) => Some(Thrown {
                    type_name,
                    message: message.unwrap_or_default(),
                }),
                // Metadata without field names: the payload starts with the two strings.
                _ => from_payload(ev.payload.as_slice()),
            };
            if let Some(t) = thrown {
                let _ = tx.send(t);
            }
        })
        .with_context(|| format!("cannot watch the exceptions of process {pid}"))?;
        Ok(ExceptionWatch {
            _session: session,
            rx,
        })
    }
}

/// ExceptionThrown_V1's payload begins with ExceptionType and ExceptionMessage, each a
/// NUL-terminated UTF-16LE string.
fn from_payload(bytes: &[u8]) -> Option<Thrown> {
    let mut pos = 0;
    let type_name = utf16z(bytes, &mut pos)?;
    let message = utf16z(bytes, &mut pos).unwrap_or_default();
    Some(Thrown { type_name, message })
}

fn utf16z(bytes: &[u8], pos: &mut usize) -> Option<String> {
    let rest = bytes.get(*pos..)?;
    let units: Vec<u16> = rest
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let end = pos.checked_add(units.len().checked_mul(2)?.checked_add(2)?)?;
    if end > bytes.len() {
        return None;
    }
    *pos = end;
    Some(String::from_utf16_lossy(&units))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_match_with_or_without_namespace() {
        let t = "System.InvalidOperationException";
        assert!(matches(None, t));
        assert!(matches(Some(t), t));
        assert!(matches(Some("InvalidOperationException"), t));
        assert!(!matches(Some("Operation"), t));
        assert!(!matches(Some("System.ArgumentException"), t));
    }

    #[test]
    fn payload_strings_are_read_with_checked_bounds() {
        let mut p: Vec<u8> = Vec::new();
        for s in ["System.X", "boom"] {
            p.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
            p.extend([0, 0]);
        }
        p.extend([1, 2, 3, 4]);
        let t = from_payload(&p).unwrap();
        assert_eq!(
            (t.type_name.as_str(), t.message.as_str()),
            ("System.X", "boom")
        );
        assert!(from_payload(&p[..5]).is_none(), "unterminated type name");
        assert!(from_payload(&[]).is_none());
    }
}
