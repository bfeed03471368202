//! A thread's managed stack through the DAC's stack walk (IXCLRDataTask::CreateStackWalk), on
//! the typed COM layer: managed frames with their methods, the runtime's explicit Frames, and
//! on request each managed frame's arguments and locals.

use std::sync::atomic::{AtomicBool, Ordering};

use super::com::S_OK;
use super::context::{Amd64Context, AMD64_CONTEXT_SIZE, CONTEXT_AMD64_ALL};
use super::iface::*;
use super::vars::Variable;
use super::*;

/// SOS's and ClrMD's flags: every kind of position (managed methods and runtime Frames).
const SIMPFRAME_ALL: u32 = 0xF;
/// ClrMD's cap on frames per thread: a corrupt stack can otherwise loop forever.
pub const MAX_FRAMES: usize = 8096;
const S_FALSE: HResult = 1;

/// What a stack position is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// Jitted or precompiled managed code.
    Managed,
    /// An explicit Frame the runtime pushed (InlinedCallFrame, HelperMethodFrame...).
    Runtime,
}

/// One position of the walk.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StackFrame {
    pub kind: FrameKind,
    /// The context's stack pointer at this position.
    #[serde(serialize_with = "crate::commands::ser_hex")]
    pub sp: u64,
    #[serde(serialize_with = "crate::commands::ser_hex")]
    pub ip: u64,
    /// The explicit Frame's address (runtime frames), else 0.
    #[serde(serialize_with = "crate::commands::ser_hex")]
    pub frame_address: u64,
    /// The explicit Frame's type (`InlinedCallFrame`...).
    pub frame_name: Option<String>,
    #[serde(serialize_with = "crate::commands::ser_hex")]
    pub method_desc: u64,
    /// The method with its signature, as the DAC formats it.
    pub method: Option<String>,
    /// File name of the method's module (`ConsoleTarget.dll`).
    pub module: Option<String>,
    /// IP minus the start of the method's code.
    pub offset: Option<u64>,
    pub arguments: Option<Vec<Variable>>,
    pub locals: Option<Vec<Variable>>,
}

/// What to collect per frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalkOptions {
    pub arguments: bool,
    pub locals: bool,
    pub max_frames: Option<usize>,
}

/// A walked stack; `stopped` says why the walk ended early (the frames before are kept).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WalkedStack {
    pub frames: Vec<StackFrame>,
    pub stopped: Option<String>,
}

/// Why a thread has no managed stack to walk.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WalkError {
    #[error("thread 0x{0:x} is not a managed thread")]
    NotManaged(u32),
    #[error("the DAC cannot walk thread 0x{tid:x}: HRESULT 0x{hr:08x}")]
    Start { tid: u32, hr: u32 },
}

/// An ISOS string getter's result: size first, then fill; cut at the first NUL.
fn sos_string(f: impl Fn(u32, *mut u16, *mut u32) -> HResult) -> Option<String> {
    let mut needed = 0u32;
    let hr = f(0, std::ptr::null_mut(), &mut needed);
    if hr < 0 || needed == 0 || needed > 1 << 16 {
        return None;
    }
    let mut buf = vec![0u16; needed as usize + 1];
    let hr = f(buf.len() as u32, buf.as_mut_ptr(), &mut needed);
    if hr < 0 {
        return None;
    }
    let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    Some(String::from_utf16_lossy(&buf[..end]))
}

impl Dac {
    /// The typed ISOSDacInterface under `g`.
    pub(crate) fn sos_ref<'g>(&self, g: &'g DacGuard) -> ComRef<'g, SosDac> {
        // SAFETY: `self.sos` is a live ISOSDacInterface for the Dac's lifetime.
        unsafe { ComRef::add_ref(g, self.sos.0) }.expect("ISOSDacInterface pointer is non-null")
    }

    /// Walks the managed stack of the thread with Linux TID `tid`. `cancel` is checked between
    /// frames.
    pub fn walk_stack(
        &self,
        tid: u32,
        opts: WalkOptions,
        cancel: &AtomicBool,
    ) -> std::result::Result<WalkedStack, WalkError> {
        let g = lock();
        // SAFETY: `self.process` is a live IXCLRDataProcess for the Dac's lifetime.
        let process = unsafe { ComRef::<XclrDataProcess>::add_ref(&g, self.process.0) }
            .expect("IXCLRDataProcess pointer is non-null");
        let sos = self.sos_ref(&g);
        let mut raw = std::ptr::null_mut();
        // SAFETY: GetTaskByOSThreadID(u32, IXCLRDataTask**).
        let hr = unsafe { call!(process, get_task_by_os_thread_id, tid, &mut raw) };
        // SAFETY: on success an owned IXCLRDataTask.
        let task = match unsafe { ComRef::<XclrDataTask>::from_raw(&g, raw) } {
            Some(t) if hr >= 0 => t,
            _ => return Err(WalkError::NotManaged(tid)),
        };
        let mut raw = std::ptr::null_mut();
        // SAFETY: CreateStackWalk(u32 flags, IXCLRDataStackWalk**).
        let hr = unsafe { call!(task, create_stack_walk, SIMPFRAME_ALL, &mut raw) };
        drop(task);
        // SAFETY: on success an owned IXCLRDataStackWalk.
        let walk = match unsafe { ComRef::<XclrDataStackWalk>::from_raw(&g, raw) } {
            Some(w) if hr >= 0 => w,
            _ => return Err(WalkError::Start { tid, hr: hr as u32 }),
        };
        let max = opts.max_frames.unwrap_or(MAX_FRAMES).min(MAX_FRAMES);
        let code_ranges = self.module_ranges();
        let mut frames: Vec<StackFrame> = Vec::new();
        let mut stopped = None;
        loop {
            if cancel.load(Ordering::Relaxed) {
                stopped = Some("cancelled".to_string());
                break;
            }
            if frames.len() >= max {
                if opts.max_frames.is_none() {
                    stopped = Some(format!("stopped after {max} frames (a looping stack?)"));
                }
                break;
            }
            let mut ctx = Amd64Context::default();
            // SAFETY: GetContext(flags, size, *size or null, buffer of `size` bytes, 16-aligned).
            let hr = unsafe {
                call!(
                    walk,
                    get_context,
                    CONTEXT_AMD64_ALL,
                    AMD64_CONTEXT_SIZE as u32,
                    std::ptr::null_mut(),
                    &mut ctx as *mut Amd64Context as *mut u8
                )
            };
            // S_FALSE before any frame: the thread has nothing to walk (an empty stack, as
            // SOS shows it).
            if hr == S_FALSE && frames.is_empty() {
                break;
            }
            if hr != S_OK {
                stopped = Some(format!(
                    "the DAC gave no register context at frame {} (HRESULT 0x{:08x})",
                    frames.len(),
                    hr as u32
                ));
                break;
            }
            let mut frame_address = 0u64;
            // SAFETY: Request(FRAME_DATA, 0, null, 8, *u64).
            let hr = unsafe {
                call!(
                    walk,
                    request,
                    DACSTACKPRIV_REQUEST_FRAME_DATA,
                    0,
                    std::ptr::null(),
                    8,
                    &mut frame_address as *mut u64 as *mut u8
                )
            };
            if hr < 0 {
                frame_address = 0;
            }
            let frame = if frame_address != 0 {
                let mut f = self.runtime_frame(&sos, &ctx, frame_address);
                if f.method.is_none() {
                    // What SOS falls back to (older runtimes name a HelperMethodFrame's method
                    // only this way).
                    f.method = frame_method_instance_name(&g, &walk);
                }
                f
            } else {
                let mut f = self.managed_frame(&sos, &ctx);
                if opts.arguments || opts.locals {
                    self.variables(&g, &walk, &mut f, opts);
                }
                f
            };
            // An unwound return address that is neither managed code nor inside any mapped
            // module: the DAC unwound through a corrupt stack (it then skips to the next
            // explicit Frame as if nothing happened). Stop before it.
            if !frames.is_empty() && !self.is_code(&sos, &code_ranges, frame.ip) {
                stopped = Some(format!(
                    "the DAC could not unwind past frame {}: the return address {:x} is not code (a corrupt stack?); the stack shown is incomplete",
                    frames.len() - 1,
                    frame.ip
                ));
                break;
            }
            // The same position twice in a row (not a Frame reported twice with a new IP)
            // means the walk is not moving.
            if frames.last().is_some_and(|p| {
                p.sp == frame.sp && p.ip == frame.ip && p.frame_address == frame.frame_address
            }) {
                stopped = Some(format!(
                    "the DAC's unwind stopped moving at frame {} (SP {:x})",
                    frames.len(),
                    frame.sp
                ));
                break;
            }
            frames.push(frame);
            // SAFETY: Next() on a live walk.
            let hr = unsafe { call!(walk, next) };
            if hr == S_FALSE {
                break;
            }
            if hr != S_OK {
                stopped = Some(format!(
                    "the DAC could not unwind past frame {} (HRESULT 0x{:08x}); the stack shown is incomplete",
                    frames.len() - 1,
                    hr as u32
                ));
                break;
            }
        }
        drop(walk);
        drop(sos);
        drop(process);
        Ok(WalkedStack { frames, stopped })
    }

    /// Address ranges of the target's mapped files, sorted.
    fn module_ranges(&self) -> Vec<(u64, u64)> {
        let g = self.shared.source.read().unwrap_or_else(|e| e.into_inner());
        let mut r: Vec<(u64, u64)> = g
            .as_ref()
            .map(|t| {
                t.modules()
                    .iter()
                    .flat_map(|m| m.ranges.iter().map(|&(s, e, _)| (s, e)))
                    .collect()
            })
            .unwrap_or_default();
        r.sort_unstable();
        r
    }

    /// Whether `ip` can be code: in a mapped module, in managed code, or at least in memory
    /// the target has.
    fn is_code(&self, sos: &ComRef<'_, SosDac>, ranges: &[(u64, u64)], ip: u64) -> bool {
        let i = ranges.partition_point(|r| r.0 <= ip);
        if i > 0 && ip < ranges[i - 1].1 {
            return true;
        }
        if self
            .code_header_data(sos, ip)
            .is_ok_and(|h| h.method_desc_ptr != 0)
        {
            return true;
        }
        // Runtime stubs live in anonymous memory: readable memory is given the benefit of the
        // doubt; an address nothing is mapped at is not code.
        self.read_target_u64(ip).is_some()
    }

    /// The method whose code holds `ip`, with its signature.
    pub fn method_name_for_ip(&self, ip: u64) -> Result<String> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut md = 0u64;
        // SAFETY: GetMethodDescPtrFromIP(u64, *u64).
        check("GetMethodDescPtrFromIP", unsafe {
            call!(sos, get_method_desc_ptr_from_ip, ip, &mut md)
        })?;
        self.method_name(&sos, md).ok_or(DacError::Call {
            call: "GetMethodDescName",
            hr: super::com::E_FAIL as u32,
        })
    }

    /// The type of the explicit Frame at `frame` (`InlinedCallFrame`...).
    pub fn frame_name(&self, frame: u64) -> Result<String> {
        let g = lock();
        let sos = self.sos_ref(&g);
        self.frame_type_name(&sos, frame).ok_or(DacError::Call {
            call: "GetFrameName",
            hr: super::com::E_FAIL as u32,
        })
    }

    fn frame_type_name(&self, sos: &ComRef<'_, SosDac>, addr: u64) -> Option<String> {
        // Up to .NET 9 the Frame's first word is its C++ vtable, from 10 a FrameIdentifier:
        // GetFrameName takes either.
        let id = self.read_target_u64(addr)?;
        // SAFETY: GetFrameName(u64 vtableOrId, count, buffer, needed).
        sos_string(|n, b, needed| unsafe { call!(sos, get_frame_name, id, n, b, needed) })
    }

    fn runtime_frame(&self, sos: &ComRef<'_, SosDac>, ctx: &Amd64Context, addr: u64) -> StackFrame {
        let frame_name = self.frame_type_name(sos, addr);
        let mut md = 0u64;
        // SAFETY: GetMethodDescPtrFromFrame(u64, *u64).
        let hr = unsafe { call!(sos, get_method_desc_ptr_from_frame, addr, &mut md) };
        let md = if hr >= 0 { md } else { 0 };
        StackFrame {
            kind: FrameKind::Runtime,
            sp: ctx.rsp,
            ip: ctx.rip,
            frame_address: addr,
            frame_name,
            method_desc: md,
            method: self.method_name(sos, md),
            module: None,
            offset: None,
            arguments: None,
            locals: None,
        }
    }

    fn managed_frame(&self, sos: &ComRef<'_, SosDac>, ctx: &Amd64Context) -> StackFrame {
        let ip = ctx.rip;
        let mut md = 0u64;
        // SAFETY: GetMethodDescPtrFromIP(u64, *u64).
        let hr = unsafe { call!(sos, get_method_desc_ptr_from_ip, ip, &mut md) };
        let (code_ok, header) = match self.code_header_data(sos, ip) {
            Ok(h) => (true, h),
            Err(_) => (false, DacpCodeHeaderData::default()),
        };
        let md = if hr >= 0 && md != 0 {
            md
        } else if code_ok {
            header.method_desc_ptr
        } else {
            0
        };
        let offset = (code_ok && header.method_start != 0 && ip >= header.method_start)
            .then(|| ip - header.method_start);
        StackFrame {
            kind: FrameKind::Managed,
            sp: ctx.rsp,
            ip,
            frame_address: 0,
            frame_name: None,
            method_desc: md,
            method: self.method_name(sos, md),
            module: self.module_file_of(sos, md),
            offset,
            arguments: None,
            locals: None,
        }
    }

    pub(super) fn method_name(&self, sos: &ComRef<'_, SosDac>, md: u64) -> Option<String> {
        if md == 0 {
            return None;
        }
        // SAFETY: GetMethodDescName(u64 md, count, buffer, needed).
        sos_string(|n, b, needed| unsafe { call!(sos, get_method_desc_name, md, n, b, needed) })
    }

    /// The file name (no directory) of the module defining a method.
    pub(super) fn module_file_of(&self, sos: &ComRef<'_, SosDac>, md: u64) -> Option<String> {
        if md == 0 {
            return None;
        }
        let module = self.method_desc_raw(sos, md).ok()?.module_ptr;
        if module == 0 {
            return None;
        }
        let path = self.module_path(sos, module)?;
        Some(path.rsplit('/').next().unwrap_or(&path).to_string())
    }

    /// The path a module was loaded from (GetModuleData, then GetPEFileName).
    pub(super) fn module_path(&self, sos: &ComRef<'_, SosDac>, module: u64) -> Option<String> {
        if module == 0 {
            return None;
        }
        let data = self.module_data_raw(sos, module).ok()?;
        if data.pe_assembly == 0 {
            return None;
        }
        let pe = data.pe_assembly;
        // SAFETY: GetPEFileName(u64, count, buffer, needed).
        sos_string(|n, b, needed| unsafe { call!(sos, get_pe_file_name, pe, n, b, needed) })
    }
}

/// The name of the walk's current position through IXCLRDataFrame::GetMethodInstance.
fn frame_method_instance_name<'g>(
    g: &'g DacGuard,
    walk: &ComRef<'g, XclrDataStackWalk>,
) -> Option<String> {
    let mut raw = std::ptr::null_mut();
    // SAFETY: GetFrame(IXCLRDataFrame**).
    let hr = unsafe { call!(walk, get_frame, &mut raw) };
    // SAFETY: on success an owned IXCLRDataFrame.
    let frame = unsafe { ComRef::<XclrDataFrame>::from_raw(g, raw) }?;
    if hr < 0 {
        return None;
    }
    let mut raw = std::ptr::null_mut();
    // SAFETY: GetMethodInstance(IXCLRDataMethodInstance**).
    let hr = unsafe { call!(frame, get_method_instance, &mut raw) };
    // SAFETY: on success an owned IXCLRDataMethodInstance.
    let method = unsafe { ComRef::<XclrDataMethodInstance>::from_raw(g, raw) }?;
    if hr < 0 {
        return None;
    }
    let mut name = vec![0u16; 2048];
    let mut len = 0u32;
    // SAFETY: GetName(flags, bufLen, *nameLen, buf) with a buffer of `bufLen` units (the
    // IXCLRData argument order).
    let hr = unsafe {
        call!(
            method,
            get_name,
            0,
            name.len() as u32,
            &mut len,
            name.as_mut_ptr()
        )
    };
    if hr < 0 {
        return None;
    }
    let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    (end > 0).then(|| String::from_utf16_lossy(&name[..end]))
}
