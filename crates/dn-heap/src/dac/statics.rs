//! Where statics live through the DAC: a type's static base, and its thread-static base on
//! one thread, whichever way the runtime exposes them.

use super::iface::{call, ComRef, DacpDomainLocalModuleData, DacpThreadLocalModuleData, SosDac14};
use super::*;

impl Dac {
    /// ISOSDacInterface14 (.NET 9+): (non-GC, GC) static base of a type.
    pub fn static_base_address(&self, mt: u64) -> Result<(u64, u64)> {
        let raw = self.sos_n(14, "ISOSDacInterface14")?;
        let g = lock();
        // SAFETY: `raw` is a live ISOSDacInterface14 for the Dac's lifetime.
        let sos14 = unsafe { ComRef::<SosDac14>::add_ref(&g, raw.0) }
            .ok_or(DacError::Unsupported("ISOSDacInterface14"))?;
        let (mut ngc, mut gc) = (0u64, 0u64);
        // SAFETY: GetStaticBaseAddress(u64 mt, u64* nonGC, u64* gc).
        check("GetStaticBaseAddress", unsafe {
            call!(sos14, get_static_base_address, mt, &mut ngc, &mut gc)
        })?;
        Ok((ngc, gc))
    }

    /// (non-GC, GC) statics bases of a module's types on runtimes before .NET 9
    /// (DomainLocalModule).
    pub fn domain_local_statics(&self, module: u64) -> Result<(u64, u64)> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpDomainLocalModuleData::default();
        // SAFETY: GetDomainLocalModuleDataFromModule(u64, *DacpDomainLocalModuleData).
        check("GetDomainLocalModuleDataFromModule", unsafe {
            call!(
                sos,
                get_domain_local_module_data_from_module,
                module,
                &mut d
            )
        })?;
        Ok((d.non_gc_static_data_start, d.gc_static_data_start))
    }

    /// (non-GC, GC) statics bases of a type, whichever way this runtime exposes them.
    pub fn statics_bases(&self, mt: u64, module: u64) -> Result<(u64, u64)> {
        if self.sos_n[14].is_some() {
            self.static_base_address(mt)
        } else {
            self.domain_local_statics(module)
        }
    }

    /// ISOSDacInterface14 (.NET 9+): (non-GC, GC) thread-statics base of a type on a thread
    /// (`thread`: the runtime's Thread). (0, 0) when the thread has not touched them.
    pub fn thread_static_base_address(&self, mt: u64, thread: u64) -> Result<(u64, u64)> {
        let raw = self.sos_n(14, "ISOSDacInterface14")?;
        let g = lock();
        // SAFETY: `raw` is a live ISOSDacInterface14 for the Dac's lifetime.
        let sos14 = unsafe { ComRef::<SosDac14>::add_ref(&g, raw.0) }
            .ok_or(DacError::Unsupported("ISOSDacInterface14"))?;
        let (mut ngc, mut gc) = (0u64, 0u64);
        // SAFETY: GetThreadStaticBaseAddress(u64 mt, u64 thread, u64* nonGC, u64* gc).
        check("GetThreadStaticBaseAddress", unsafe {
            call!(
                sos14,
                get_thread_static_base_address,
                mt,
                thread,
                &mut ngc,
                &mut gc
            )
        })?;
        Ok((ngc, gc))
    }

    /// (non-GC, GC) thread statics of a module on a thread, before .NET 9 (ThreadLocalModule;
    /// the module's index comes from GetModuleData). (0, 0) when the thread has none for the
    /// module.
    pub fn thread_local_module_statics(&self, module: u64, thread: u64) -> Result<(u64, u64)> {
        /// The DAC's answer for a thread that has no ThreadLocalModule for the module (seen on
        /// .NET 8 for every thread that never touched the module's thread statics).
        const E_INVALIDARG: HResult = 0x8007_0057_u32 as HResult;
        let g = lock();
        let sos = self.sos_ref(&g);
        let index = self.module_data_raw(&sos, module)?.module_index;
        let index = u32::try_from(index).map_err(|_| DacError::TooMany {
            what: "module index",
            count: index,
            max: u64::from(u32::MAX),
        })?;
        let mut d = DacpThreadLocalModuleData::default();
        // SAFETY: GetThreadLocalModuleData(u64 thread, u32 index, *DacpThreadLocalModuleData).
        let hr = unsafe { call!(sos, get_thread_local_module_data, thread, index, &mut d) };
        if hr == E_INVALIDARG {
            return Ok((0, 0));
        }
        check("GetThreadLocalModuleData", hr)?;
        Ok((d.non_gc_static_data_start, d.gc_static_data_start))
    }

    /// (non-GC, GC) thread-statics bases of a type on a thread, whichever way this runtime
    /// exposes them.
    pub fn thread_statics_bases(&self, mt: u64, module: u64, thread: u64) -> Result<(u64, u64)> {
        if self.sos_n[14].is_some() {
            self.thread_static_base_address(mt, thread)
        } else {
            self.thread_local_module_statics(module, thread)
        }
    }
}
