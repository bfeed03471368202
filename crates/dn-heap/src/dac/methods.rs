//! Methods through the DAC: a MethodTable's slots, MethodDescs, their code and names.

use super::iface::{
    call, drain, ComRef, DacpCodeHeaderData, DacpMethodDescData, SosDac, SosDac15, SosEnum,
};
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
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut entry = 0u64;
        // SAFETY: GetMethodTableSlot(u64 mt, u32 slot, u64* value).
        check("GetMethodTableSlot", unsafe {
            call!(sos, get_method_table_slot, mt, slot, &mut entry)
        })?;
        Ok(entry)
    }

    /// (JIT type, MethodDesc) of a code address or precode (GetCodeHeaderData).
    pub fn code_header(&self, ip: u64) -> Result<(i32, u64)> {
        let g = lock();
        let h = self.code_header_data(&self.sos_ref(&g), ip)?;
        Ok((h.jit_type, h.method_desc_ptr))
    }

    /// GetMethodDescData(md, ip = 0, *data, 0, null, null).
    pub fn method_desc_data(&self, md: u64) -> Result<MethodDescData> {
        let g = lock();
        let d = self.method_desc_raw(&self.sos_ref(&g), md)?;
        Ok(MethodDescData {
            has_native_code: d.has_native_code != 0,
            native_code: d.native_code_addr,
            method_table: d.method_table_ptr,
            module: d.module_ptr,
            token: d.md_token,
        })
    }

    /// The one typed GetCodeHeaderData call (under the caller's DAC lock).
    pub(super) fn code_header_data(
        &self,
        sos: &ComRef<'_, SosDac>,
        ip: u64,
    ) -> Result<DacpCodeHeaderData> {
        let mut h = DacpCodeHeaderData::default();
        // SAFETY: GetCodeHeaderData(u64 ip, *DacpCodeHeaderData).
        check("GetCodeHeaderData", unsafe {
            call!(sos, get_code_header_data, ip, &mut h)
        })?;
        Ok(h)
    }

    /// The one typed GetMethodDescData call (under the caller's DAC lock): no IP, no rejit
    /// versions asked for.
    pub(super) fn method_desc_raw(
        &self,
        sos: &ComRef<'_, SosDac>,
        md: u64,
    ) -> Result<DacpMethodDescData> {
        let mut d = DacpMethodDescData::default();
        // SAFETY: GetMethodDescData(md, ip 0, *data, 0 rejit entries, null, null).
        check("GetMethodDescData", unsafe {
            call!(
                sos,
                get_method_desc_data,
                md,
                0,
                &mut d,
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut()
            )
        })?;
        Ok(d)
    }

    pub fn method_desc_name(&self, md: u64) -> Result<String> {
        let g = lock();
        let sos = self.sos_ref(&g);
        // SAFETY: GetMethodDescName(u64, count, buffer, *needed).
        dac_string("GetMethodDescName", |n, b, needed| unsafe {
            call!(sos, get_method_desc_name, md, n, b, needed)
        })
    }

    /// The MethodTable of an EEClass (on .NET 9+ `class` is the canonical MethodTable itself).
    pub fn method_table_for_eeclass(&self, class: u64) -> Result<u64> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut mt = 0u64;
        // SAFETY: GetMethodTableForEEClass(u64 eeclass, u64* mt).
        check("GetMethodTableForEEClass", unsafe {
            call!(sos, get_method_table_for_ee_class, class, &mut mt)
        })?;
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
        let raw = self.sos_n[15]?;
        let g = lock();
        // SAFETY: `raw` is a live ISOSDacInterface15 for the Dac's lifetime.
        let sos15 = unsafe { ComRef::<SosDac15>::add_ref(&g, raw.0) }?;
        let mut e = std::ptr::null_mut();
        // SAFETY: GetMethodTableSlotEnumerator(u64 mt, ISOSMethodEnum** out).
        let hr = unsafe { call!(sos15, get_method_table_slot_enumerator, mt, &mut e) };
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
