//! The diagnostics IPC wire format ("DOTNET_IPC_V1"): the 20-byte header, payload primitives and the
//! command identifiers. Pure byte handling, no I/O, so it can be tested on its own.

use super::IpcError;

/// Magic that starts every request and response header (NUL included).
pub const MAGIC: &[u8; 14] = b"DOTNET_IPC_V1\0";
pub const HEADER_LEN: usize = 20;
/// The header's size field is a u16 covering header and payload.
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// A command: (command set, command id), with a name for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command {
    pub set: u8,
    pub id: u8,
    pub name: &'static str,
}

impl Command {
    const fn new(set: u8, id: u8, name: &'static str) -> Self {
        Command { set, id, name }
    }
}

pub mod commands {
    use super::Command;
    pub const GENERATE_CORE_DUMP: Command = Command::new(0x01, 0x01, "GenerateCoreDump");
    pub const GENERATE_CORE_DUMP2: Command = Command::new(0x01, 0x02, "GenerateCoreDump2");
    pub const GENERATE_CORE_DUMP3: Command = Command::new(0x01, 0x03, "GenerateCoreDump3");
    pub const STOP_TRACING: Command = Command::new(0x02, 0x01, "StopTracing");
    pub const COLLECT_TRACING: Command = Command::new(0x02, 0x02, "CollectTracing");
    pub const COLLECT_TRACING2: Command = Command::new(0x02, 0x03, "CollectTracing2");
    pub const COLLECT_TRACING6: Command = Command::new(0x02, 0x07, "CollectTracing6");
    pub const PROCESS_INFO: Command = Command::new(0x04, 0x00, "ProcessInfo");
    pub const RESUME_RUNTIME: Command = Command::new(0x04, 0x01, "ResumeRuntime");
    pub const PROCESS_ENVIRONMENT: Command = Command::new(0x04, 0x02, "ProcessEnvironment");
    pub const PROCESS_INFO2: Command = Command::new(0x04, 0x04, "ProcessInfo2");
    pub const PROCESS_INFO3: Command = Command::new(0x04, 0x08, "ProcessInfo3");
}

/// Response command set and ids (the "Server" set).
const SERVER_SET: u8 = 0xFF;
const SERVER_OK: u8 = 0x00;
const SERVER_ERROR: u8 = 0xFF;

pub const HR_BAD_ENCODING: u32 = 0x8013_1384;
pub const HR_UNKNOWN_COMMAND: u32 = 0x8013_1385;
pub const HR_UNKNOWN_MAGIC: u32 = 0x8013_1386;

/// Human name of the HRESULTs the diagnostics server answers with.
pub fn hresult_name(hr: u32) -> Option<&'static str> {
    Some(match hr {
        HR_BAD_ENCODING => "bad encoding",
        HR_UNKNOWN_COMMAND => "unknown command (runtime too old for it)",
        HR_UNKNOWN_MAGIC => "unknown magic",
        0x8013_1515 => "not supported",
        0x8000_4005 => "failure",
        0x8013_135B => "not yet available",
        0x8013_1371 => "runtime uninitialized",
        0x8007_0057 => "invalid argument",
        0x8007_007A => "insufficient buffer",
        0x8000_00CB => "environment variable not found",
        _ => return None,
    })
}

/// Builds a complete request message for `cmd` with `payload`.
pub fn encode_request(cmd: Command, payload: &[u8]) -> Result<Vec<u8>, IpcError> {
    let total = HEADER_LEN + payload.len();
    if total > MAX_MESSAGE_LEN {
        return Err(IpcError::Protocol(format!(
            "{} request of {} bytes exceeds the 65535-byte message limit",
            cmd.name, total
        )));
    }
    let mut msg = Vec::with_capacity(total);
    msg.extend_from_slice(MAGIC);
    msg.extend_from_slice(&(total as u16).to_le_bytes());
    msg.push(cmd.set);
    msg.push(cmd.id);
    msg.extend_from_slice(&[0, 0]);
    msg.extend_from_slice(payload);
    Ok(msg)
}

/// A parsed response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Payload length (the header's size minus 20).
    pub payload_len: usize,
    pub ok: bool,
}

pub fn decode_response_header(
    cmd: Command,
    h: &[u8; HEADER_LEN],
) -> Result<ResponseHeader, IpcError> {
    if &h[..14] != MAGIC {
        return Err(IpcError::Protocol(format!(
            "{}: the reply does not start with the DOTNET_IPC_V1 magic",
            cmd.name
        )));
    }
    let size = u16::from_le_bytes([h[14], h[15]]) as usize;
    if size < HEADER_LEN {
        return Err(IpcError::Protocol(format!(
            "{}: reply header declares {} bytes, less than the header itself",
            cmd.name, size
        )));
    }
    if h[16] != SERVER_SET || (h[17] != SERVER_OK && h[17] != SERVER_ERROR) {
        return Err(IpcError::Protocol(format!(
            "{}: unexpected reply command {:#04x}/{:#04x}",
            cmd.name, h[16], h[17]
        )));
    }
    Ok(ResponseHeader {
        payload_len: size - HEADER_LEN,
        ok: h[17] == SERVER_OK,
    })
}

/// Appends payload primitives in the protocol's encoding (little-endian, no padding).
#[derive(Debug, Default, Clone)]
pub struct PayloadWriter {
    buf: Vec<u8>,
}

impl PayloadWriter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A length-prefixed UTF-16 string whose count includes the terminating NUL; `None` is the
    /// protocol's null string (count 0).
    pub fn string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.u32(0),
            Some(s) => {
                let units: Vec<u16> = s.encode_utf16().chain(std::iter::once(0)).collect();
                self.u32(units.len() as u32);
                for u in units {
                    self.buf.extend_from_slice(&u.to_le_bytes());
                }
                self
            }
        }
    }
    pub fn bytes(&mut self) -> &[u8] {
        &self.buf
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads payload primitives; every read is bounds-checked and names what was being read.
pub struct PayloadReader<'a> {
    buf: &'a [u8],
    pos: usize,
    context: &'static str,
}

impl<'a> PayloadReader<'a> {
    pub fn new(buf: &'a [u8], context: &'static str) -> Self {
        PayloadReader {
            buf,
            pos: 0,
            context,
        }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], IpcError> {
        if self.remaining() < n {
            return Err(IpcError::Protocol(format!(
                "{}: reply truncated reading {} at byte {} ({} bytes left, {} needed)",
                self.context,
                what,
                self.pos,
                self.remaining(),
                n
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u16(&mut self, what: &str) -> Result<u16, IpcError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self, what: &str) -> Result<u32, IpcError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    pub fn u64(&mut self, what: &str) -> Result<u64, IpcError> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    pub fn guid(&mut self, what: &str) -> Result<Guid, IpcError> {
        let b = self.take(16, what)?;
        Ok(Guid(b.try_into().expect("16 bytes")))
    }
    /// Reads a protocol string; the null string (count 0) reads as an empty string.
    pub fn string(&mut self, what: &str) -> Result<String, IpcError> {
        let n = self.u32(what)? as usize;
        let bytes = self.take(n.saturating_mul(2), what)?;
        let mut units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        if units.last() == Some(&0) {
            units.pop();
        }
        Ok(String::from_utf16_lossy(&units))
    }
}

/// GUIDs on the wire use the .NET byte layout; the stream parser already models them.
pub use dn_nettrace::Guid;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_layout() {
        let msg = encode_request(commands::PROCESS_INFO3, &[]).unwrap();
        assert_eq!(msg.len(), 20);
        assert_eq!(&msg[..14], MAGIC);
        assert_eq!(&msg[14..], &[20, 0, 0x04, 0x08, 0, 0]);
    }

    #[test]
    fn strings_carry_their_nul_and_round_trip() {
        let mut w = PayloadWriter::new();
        w.string(Some("Linux")).string(None).string(Some(""));
        let b = w.into_bytes();
        assert_eq!(
            &b[..16],
            &[6, 0, 0, 0, b'L', 0, b'i', 0, b'n', 0, b'u', 0, b'x', 0, 0, 0]
        );
        let mut r = PayloadReader::new(&b, "test");
        assert_eq!(r.string("a").unwrap(), "Linux");
        assert_eq!(r.string("b").unwrap(), "");
        assert_eq!(r.string("c").unwrap(), "");
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn truncated_payload_is_an_error_not_a_panic() {
        let mut r = PayloadReader::new(&[5, 0, 0, 0, 1], "ProcessInfo");
        let e = r.string("commandLine").unwrap_err().to_string();
        assert!(
            e.contains("ProcessInfo") && e.contains("commandLine"),
            "{e}"
        );
        let mut r = PayloadReader::new(&[0xFF, 0xFF, 0xFF, 0xFF], "x");
        assert!(r.string("huge").is_err());
    }

    #[test]
    fn error_reply_header_is_recognised() {
        let mut h = [0u8; 20];
        h[..14].copy_from_slice(MAGIC);
        h[14] = 24;
        h[16] = 0xFF;
        h[17] = 0xFF;
        let r = decode_response_header(commands::PROCESS_INFO, &h).unwrap();
        assert!(!r.ok);
        assert_eq!(r.payload_len, 4);
        h[0] = b'X';
        assert!(decode_response_header(commands::PROCESS_INFO, &h).is_err());
    }

    #[test]
    fn guid_formats_like_dotnet() {
        let g = Guid([
            0x3C, 0xBA, 0xD7, 0x4B, 0x93, 0x34, 0xC4, 0x41, 0xBF, 0x41, 0xAD, 0x3D, 0xA5, 0xCB,
            0xD1, 0x66,
        ]);
        assert_eq!(g.to_string(), "4bd7ba3c-3493-41c4-bf41-ad3da5cbd166");
    }
}
