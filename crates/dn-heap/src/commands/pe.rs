//! `pe [-nested] [ADDR]` (printexception): an exception's type, message, HResult, the stack
//! trace it recorded in `_stackTrace`, its inner exceptions; without ADDR the current thread's
//! last thrown exception.

use anyhow::{bail, Context};
use serde::Serialize;

use super::dumpheap::read_string;
use super::{parse_addr, ser_hex, Render, Session};

/// Elements of a stack trace are 32 bytes: ip, sp, MethodDesc*, flags.
const TRACE_ELEMENT: u64 = 32;
/// The trace's header before the elements (count, keep-alive count or pad, Thread*).
const TRACE_HEADER: u64 = 16;
/// An array's data follows its MethodTable and length.
const ARRAY_DATA: u64 = 16;
/// Inner exceptions followed at most (a cycle must not loop).
const MAX_INNER: usize = 64;
/// XCode of an exception thrown by managed code (`throw`).
const EXCEPTION_COMPLUS: u32 = 0xE043_4352;
/// HResults of the exceptions the runtime raises from hardware faults (SOS treats them as
/// "async": the recorded IP is the faulting instruction, shown one byte on).
const ASYNC_HRESULTS: [u32; 6] = [
    0x8007_0216, // COR_E_ARITHMETIC
    0x8013_1516, // COR_E_OVERFLOW
    0x8002_0012, // COR_E_DIVIDEBYZERO
    0x8013_1537, // COR_E_FORMAT
    0x8000_4003, // COR_E_NULLREFERENCE, E_POINTER
    0x8013_1541, // COR_E_DATAMISALIGNED
];

/// One frame of the recorded trace.
#[derive(Debug, Clone, Serialize)]
pub struct TraceFrame {
    #[serde(serialize_with = "ser_hex")]
    pub sp: u64,
    #[serde(serialize_with = "ser_hex")]
    pub ip: u64,
    #[serde(serialize_with = "ser_hex")]
    pub method_desc: u64,
    pub module: Option<String>,
    pub method: Option<String>,
    /// Bytes from the method's code start.
    pub offset: Option<u64>,
}

/// An inner exception, named (SOS shows one level and the command to see more).
#[derive(Debug, Clone, Serialize)]
pub struct InnerException {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    pub type_name: String,
    pub message: Option<String>,
}

/// One exception object.
#[derive(Debug, Clone, Serialize)]
pub struct ExceptionInfo {
    #[serde(serialize_with = "ser_hex")]
    pub address: u64,
    pub type_name: String,
    pub message: Option<String>,
    /// The inner-exception chain, nearest first.
    pub inner_exceptions: Vec<InnerException>,
    /// From `_stackTrace`; `None` when the exception has none (never thrown).
    pub stack_trace: Option<Vec<TraceFrame>>,
    pub stack_trace_string: Option<String>,
    pub hresult: u32,
}

/// `pe`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct PrintException {
    /// `None` with a `note` when there is nothing to show (no exception on the thread).
    pub exception: Option<ExceptionInfo>,
    /// With `-nested`: the exceptions in flight under this one, innermost first.
    pub nested: Vec<ExceptionInfo>,
    /// The thread has nested exceptions and `-nested` was not given.
    pub has_nested: bool,
    pub note: Option<String>,
    pub warnings: Vec<String>,
}

pub fn pe(s: &Session, args: &[&str]) -> anyhow::Result<PrintException> {
    let mut nested = false;
    let mut addr = None;
    for a in args {
        match a.to_ascii_lowercase().as_str() {
            "-nested" => nested = true,
            "-lines" | "-l" => {}
            o if o.starts_with('-') => bail!("unknown pe option '{a}': usage: pe [-nested] [ADDR]"),
            _ => addr = Some(parse_addr(Some(a), "pe [-nested] [ADDR]")?),
        }
    }
    let mut out = PrintException {
        exception: None,
        nested: Vec::new(),
        has_nested: false,
        note: None,
        warnings: Vec::new(),
    };
    let dac = &s.runtime.dac;
    let mem = s.runtime.heap.memory();
    let mut first_nested = 0;
    let obj = match addr {
        Some(a) => a,
        None => {
            let (_, tid) = s.current_thread()?;
            let Some(t) = dac.threads()?.into_iter().find(|t| t.os_id == tid) else {
                out.note = Some("The current thread is unmanaged".into());
                return Ok(out);
            };
            first_nested = t.first_nested_exception;
            let h = t.last_thrown_object_handle;
            let o = if h == 0 {
                0
            } else {
                mem.read_u64(h).unwrap_or(0)
            };
            if o == 0 {
                out.note = Some("There is no current managed exception on this thread".into());
                return Ok(out);
            }
            o
        }
    };
    out.exception = Some(exception_info(s, obj, &mut out.warnings)?);
    out.has_nested = first_nested != 0 && !nested;
    if nested {
        let mut rec = first_nested;
        let mut seen = 0;
        while rec != 0 && seen < MAX_INNER {
            let (o, next) = dac.nested_exception(rec)?;
            if o != 0 {
                match exception_info(s, o, &mut out.warnings) {
                    Ok(e) => out.nested.push(e),
                    Err(e) => out.warnings.push(format!("nested exception {o:x}: {e:#}")),
                }
            }
            rec = next;
            seen += 1;
        }
    }
    Ok(out)
}

fn object_type(s: &Session, obj: u64) -> Option<(u64, String)> {
    let mt = s.runtime.heap.memory().read_u64(obj).ok()? & !7;
    let info = s.runtime.heap.mt_info(&s.runtime.dac, mt)?;
    Some((mt, s.runtime.heap.type_name(&s.runtime.dac, info.mt)))
}

/// Whether `mt` is System.Exception or derives from it.
fn is_exception(s: &Session, mut mt: u64) -> bool {
    let exception_mt = s.runtime.heap.globals.exception_mt;
    for _ in 0..64 {
        if mt == 0 {
            return false;
        }
        if mt == exception_mt {
            return true;
        }
        mt = match s.runtime.dac.method_table_data(mt) {
            Ok(d) => d.parent,
            Err(_) => return false,
        };
    }
    false
}

fn string_at(s: &Session, addr: u64) -> Option<String> {
    (addr != 0)
        .then(|| read_string(s.runtime.heap.memory(), addr, 1 << 20).map(|v| v.0))
        .flatten()
}

fn exception_info(
    s: &Session,
    obj: u64,
    warnings: &mut Vec<String>,
) -> anyhow::Result<ExceptionInfo> {
    let (mt, type_name) =
        object_type(s, obj).with_context(|| format!("Invalid exception object: {obj:016x}"))?;
    if !is_exception(s, mt) {
        bail!("Invalid exception object: {obj:016x} is a {type_name}, not an exception");
    }
    let d = s
        .runtime
        .dac
        .exception_object(obj)
        .with_context(|| format!("Invalid exception object: {obj:016x}"))?;
    let mut inner_exceptions = Vec::new();
    let mut next = d.inner_exception;
    while next != 0 && inner_exceptions.len() < MAX_INNER {
        let Some((_, name)) = object_type(s, next) else {
            warnings.push(format!("inner exception {next:x} is not readable"));
            break;
        };
        let inner = s.runtime.dac.exception_object(next).ok();
        inner_exceptions.push(InnerException {
            address: next,
            type_name: name,
            message: inner.and_then(|i| string_at(s, i.message)),
        });
        next = inner.map_or(0, |i| i.inner_exception);
    }
    // Where SOS shows such an IP one byte on, so do we (the same lines compare equal).
    let async_ip =
        d.xcode as u32 != EXCEPTION_COMPLUS || ASYNC_HRESULTS.contains(&(d.hresult as u32));
    let stack_trace = match d.stack_trace {
        0 => None,
        st => Some(stack_trace(s, st, u64::from(async_ip), warnings)),
    };
    Ok(ExceptionInfo {
        address: obj,
        type_name,
        message: string_at(s, d.message),
        inner_exceptions,
        stack_trace,
        stack_trace_string: string_at(s, d.stack_trace_string),
        hresult: d.hresult as u32,
    })
}

/// Decodes `_stackTrace`: an sbyte[] holding the header and 32-byte elements, or on .NET 9+
/// an object[] whose element 0 is that array (the others keep collectible methods alive).
fn stack_trace(
    s: &Session,
    mut arr: u64,
    ip_bias: u64,
    warnings: &mut Vec<String>,
) -> Vec<TraceFrame> {
    let mem = s.runtime.heap.memory();
    if object_type(s, arr).is_some_and(|(_, n)| n == "System.Object[]") {
        match arr
            .checked_add(ARRAY_DATA)
            .and_then(|a| mem.read_u64(a).ok())
        {
            Some(first) => arr = first,
            None => {
                warnings.push(format!("stack trace array {arr:x} is not readable"));
                return Vec::new();
            }
        }
    }
    let Some(len) = arr.checked_add(8).and_then(|a| mem.read_u32(a).ok()) else {
        warnings.push(format!("stack trace array {arr:x} is not readable"));
        return Vec::new();
    };
    let data = arr + ARRAY_DATA;
    let Ok(count) = mem.read_u32(data) else {
        warnings.push(format!("stack trace header at {data:x} is not readable"));
        return Vec::new();
    };
    // Only what the array can hold.
    let room = (u64::from(len).saturating_sub(TRACE_HEADER)) / TRACE_ELEMENT;
    if u64::from(count) > room {
        warnings.push(format!(
            "stack trace claims {count} frames but its array holds {room}; showing {room}"
        ));
    }
    let mut frames = Vec::new();
    for i in 0..u64::from(count).min(room) {
        let at = data + TRACE_HEADER + i * TRACE_ELEMENT;
        let (Ok(ip), Ok(sp), Ok(md)) = (
            mem.read_u64(at),
            mem.read_u64(at + 8),
            mem.read_u64(at + 16),
        ) else {
            warnings.push(format!("stack trace element {i} at {at:x} is not readable"));
            break;
        };
        let ip = ip.wrapping_add(ip_bias);
        let place = s.runtime.dac.code_place(md, ip);
        frames.push(TraceFrame {
            sp,
            ip,
            method_desc: md,
            module: place.module,
            method: place.method,
            offset: place.offset,
        });
    }
    frames
}

impl ExceptionInfo {
    fn render(&self, out: &mut String) {
        out.push_str(&format!("Exception object: {:016x}\n", self.address));
        out.push_str(&format!("Exception type:   {}\n", self.type_name));
        out.push_str(&format!(
            "Message:          {}\n",
            self.message.as_deref().unwrap_or("<none>")
        ));
        match self.inner_exceptions.first() {
            Some(i) => out.push_str(&format!(
                "InnerException:   {}, Use printexception {:016X} to see more.\n",
                i.type_name, i.address
            )),
            None => out.push_str("InnerException:   <none>\n"),
        }
        match &self.stack_trace {
            None => out.push_str("StackTrace (generated): <none>\n"),
            Some(t) if t.is_empty() => {
                out.push_str("StackTrace (generated):\nUnable to decipher generated stack trace\n")
            }
            Some(t) => {
                out.push_str(
                    "StackTrace (generated):\n    SP               IP               Function\n",
                );
                for f in t {
                    let mut name = format!(
                        "{}!{}",
                        f.module.as_deref().unwrap_or("UNKNOWN"),
                        f.method.as_deref().unwrap_or("<unknown>")
                    );
                    if let Some(o) = f.offset.filter(|&o| o != 0) {
                        name.push_str(&format!("+0x{o:x}"));
                    }
                    out.push_str(&format!("    {:016X} {:016X} {name}\n", f.sp, f.ip));
                }
                out.push('\n');
            }
        }
        out.push_str(&format!(
            "StackTraceString: {}\n",
            self.stack_trace_string.as_deref().unwrap_or("<none>")
        ));
        out.push_str(&format!("HResult: {:x}\n", self.hresult));
    }
}

impl Render for PrintException {
    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(n) = &self.note {
            out.push_str(n);
            out.push('\n');
        }
        if let Some(e) = &self.exception {
            e.render(&mut out);
        }
        if self.has_nested {
            out.push_str(
                "There are nested exceptions on this thread. Run with -nested for details\n",
            );
        }
        for e in &self.nested {
            out.push_str("\nNested exception -------------------------------------------------------------\n");
            e.render(&mut out);
        }
        crate::commands::push_warnings(&mut out, &self.warnings);
        out
    }
}
