//! Methods through the DAC: a MethodTable's slots, MethodDescs, their code and names.

use super::iface::{drain, ComRef, SosEnum};
use super::*;

/// What `dumpmt -md` shows of one slot.
#[derive(Debug, Clone, Copy)]
pub struct SlotMethod {
    pub slot: u32,
    pub entry: u64,
    pub method_desc: u64,
}

/// DacpMethodDescData, the fields used.
#[derive(Debug, Clone, Copy)]
pub struct MethodDescData {
    pub has_native_code: bool,
    pub native_code: u64,
    pub method_table: u64,
    pub module: u64,
    pub token: u32,
}

/// How a method's code came to be (DacpCodeHeaderData.JITType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JitKind {
    /// Compiled by the JIT.
    Jit,
    /// Precompiled (ReadyToRun).
    PreJit,
    /// Implemented in the runtime itself.
    Fcall,
    /// No code yet.
    None,
}

impl JitKind {
    pub fn name(self) -> &'static str {
        match self {
            JitKind::Jit => "JIT",
            JitKind::PreJit => "PreJIT",
            JitKind::Fcall => "FCALL",
            JitKind::None => "NONE",
        }
    }
}

impl Dac {
    /// The code address in slot `slot` of `mt` (GetMethodTableSlot).
    pub fn method_table_slot(&self, mt: u64, slot: u32) -> Result<u64> {
        let _g = lock();
        let mut entry = 0u64;
        // SAFETY: GetMethodTableSlot(u64 mt, u32 slot, u64* value).
        let hr = unsafe {
            let f: unsafe extern "system" fn(*mut c_void, u64, u32, *mut u64) -> HResult =
                self.sos.slot(38);
            f(self.sos.0, mt, slot, &mut entry)
        };
        check("GetMethodTableSlot", hr)?;
        Ok(entry)
    }

    /// (JIT type, MethodDesc) of a code address or precode (GetCodeHeaderData).
    pub fn code_header(&self, ip: u64) -> Result<(i32, u64)> {
        let b = self.call_struct(self.sos, 26, "GetCodeHeaderData", Some(ip), 0x38)?;
        Ok((le_u32(&b, 8)? as i32, le_u64(&b, 0x10)?))
    }

    /// GetMethodDescData(md, ip = 0, *data, 0, null, null).
    pub fn method_desc_data(&self, md: u64) -> Result<MethodDescData> {
        let _g = lock();
        let mut buf = [0u64; 0x98 / 8];
        // SAFETY: slot 20 is GetMethodDescData(u64 md, u64 ip, DacpMethodDescData*, u32 count,
        // DacpReJitData*, u32* needed); the buffer is the struct's 0x98 bytes, 8-aligned, and
        // no rejit array is asked for.
        let hr = unsafe {
            type F = unsafe extern "system" fn(
                *mut c_void,
                u64,
                u64,
                *mut u64,
                u32,
                *mut c_void,
                *mut u32,
            ) -> HResult;
            let f: F = self.sos.slot(20);
            f(
                self.sos.0,
                md,
                0,
                buf.as_mut_ptr(),
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        check("GetMethodDescData", hr)?;
        let b: Vec<u8> = buf.iter().flat_map(|v| v.to_le_bytes()).collect();
        Ok(MethodDescData {
            has_native_code: le_u32(&b, 0)? != 0,
            native_code: le_u64(&b, 0x10)?,
            method_table: le_u64(&b, 0x28)?,
            module: le_u64(&b, 0x30)?,
            token: le_u32(&b, 0x38)?,
        })
    }

    pub fn method_desc_name(&self, md: u64) -> Result<String> {
        self.call_string(self.sos, 22, "GetMethodDescName", md)
    }

    /// The MethodTable of an EEClass (on .NET 9+ `class` is the canonical MethodTable itself).
    pub fn method_table_for_eeclass(&self, class: u64) -> Result<u64> {
        let _g = lock();
        let mut mt = 0u64;
        // SAFETY: GetMethodTableForEEClass(u64 eeclass, u64* mt).
        let hr = unsafe {
            let f: unsafe extern "system" fn(*mut c_void, u64, *mut u64) -> HResult =
                self.sos.slot(41);
            f(self.sos.0, class, &mut mt)
        };
        check("GetMethodTableForEEClass", hr)?;
        Ok(mt)
    }

    /// Every slot of `mt` with the MethodDesc behind it: ISOSDacInterface15's enumerator
    /// (.NET 9+; it knows the MethodDesc of slots whose code is not set up yet), else each slot
    /// below `count` through its code address (0 when no MethodDesc is found).
    pub fn method_table_slots(&self, mt: u64, count: u32) -> Vec<SlotMethod> {
        if let Some(v) = self.method_enum(mt) {
            return v;
        }
        (0..count)
            .filter_map(|slot| {
                let entry = self.method_table_slot(mt, slot).ok()?;
                let method_desc = self.code_header(entry).map_or(0, |(_, md)| md);
                Some(SlotMethod {
                    slot,
                    entry,
                    method_desc,
                })
            })
            .collect()
    }

    /// ISOSDacInterface15::GetMethodTableSlotEnumerator, drained; `None` when not offered.
    fn method_enum(&self, mt: u64) -> Option<Vec<SlotMethod>> {
        let sos15 = self.sos_n[15]?;
        let g = lock();
        let mut e = std::ptr::null_mut();
        // SAFETY: slot 3 is GetMethodTableSlotEnumerator(u64 mt, ISOSMethodEnum** out), called
        // under the DAC lock held here.
        let hr = unsafe {
            let f: unsafe extern "system" fn(*mut c_void, u64, *mut *mut c_void) -> HResult =
                sos15.slot(3);
            f(sos15.0, mt, &mut e)
        };
        if hr < 0 {
            return None;
        }
        // SAFETY: on success an owned ISOSMethodEnum (an ISOSEnum of SOSMethodData items).
        let e = unsafe { ComRef::<SosEnum>::from_raw(&g, e) }?;
        Some(
            drain::<SosMethodData>(&e)
                .iter()
                .map(|m| SlotMethod {
                    method_desc: m.method_desc,
                    entry: m.entry,
                    slot: m.slot,
                })
                .collect(),
        )
    }

    /// How `md`'s code came to be; `runtime` is the address range of libcoreclr.
    pub fn jit_kind(&self, entry: u64, md: u64, runtime: (u64, u64)) -> JitKind {
        let from = |t: i32| match t {
            1 => Some(JitKind::Jit),
            2 => Some(JitKind::PreJit),
            _ => None,
        };
        if let Some(k) = self.code_header(entry).ok().and_then(|(t, _)| from(t)) {
            return k;
        }
        let Ok(d) = self.method_desc_data(md) else {
            return JitKind::None;
        };
        if !d.has_native_code || d.native_code == 0 {
            return JitKind::None;
        }
        if (runtime.0..runtime.1).contains(&d.native_code) {
            return JitKind::Fcall;
        }
        self.code_header(d.native_code)
            .ok()
            .and_then(|(t, _)| from(t))
            .unwrap_or(JitKind::None)
    }
}

/// SOSMethodData, an item of ISOSMethodEnum.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct SosMethodData {
    method_desc: u64,
    entry: u64,
    defining_method_table: u64,
    defining_module: u64,
    token: u32,
    slot: u32,
}

const _: () = assert!(std::mem::size_of::<SosMethodData>() == 0x28);
