//! Types through the DAC: MethodTables, fields, modules and metadata names.

use super::iface::{
    call, ComRef, DacpFieldDescData, DacpMethodTableData, DacpMethodTableFieldData, DacpObjectData,
    MetaDataImport,
};
use super::*;

impl Dac {
    pub fn method_table_data(&self, mt: u64) -> Result<MethodTableData> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpMethodTableData::default();
        // SAFETY: GetMethodTableData(u64, *DacpMethodTableData).
        check("GetMethodTableData", unsafe {
            call!(sos, get_method_table_data, mt, &mut d)
        })?;
        Ok(MethodTableData {
            is_free: d.is_free != 0,
            module: d.module,
            class: d.class,
            parent: d.parent_method_table,
            num_interfaces: d.num_interfaces,
            num_methods: d.num_methods,
            base_size: d.base_size,
            component_size: d.component_size,
            token: d.token,
            attr_class: d.attr_class,
            contains_pointers: d.contains_pointers != 0,
        })
    }

    pub fn method_table_name(&self, mt: u64) -> Result<String> {
        let g = lock();
        let sos = self.sos_ref(&g);
        // SAFETY: GetMethodTableName(u64, count, buffer, *needed).
        dac_string("GetMethodTableName", |n, b, needed| unsafe {
            call!(sos, get_method_table_name, mt, n, b, needed)
        })
    }

    pub fn method_table_field_data(&self, mt: u64) -> Result<MethodTableFieldData> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpMethodTableFieldData::default();
        // SAFETY: GetMethodTableFieldData(u64, *DacpMethodTableFieldData).
        check("GetMethodTableFieldData", unsafe {
            call!(sos, get_method_table_field_data, mt, &mut d)
        })?;
        Ok(MethodTableFieldData {
            num_instance_fields: d.num_instance_fields,
            num_static_fields: d.num_static_fields,
            num_thread_static_fields: d.num_thread_static_fields,
            first_field: d.first_field,
        })
    }

    pub fn field_desc_data(&self, fd: u64) -> Result<FieldDescData> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpFieldDescData::default();
        // SAFETY: GetFieldDescData(u64, *DacpFieldDescData).
        check("GetFieldDescData", unsafe {
            call!(sos, get_field_desc_data, fd, &mut d)
        })?;
        Ok(FieldDescData {
            element_type: d.element_type,
            sig_type: d.sig_type,
            mt_of_type: d.mt_of_type,
            token: d.token,
            enclosing_mt: d.mt_of_enclosing_class,
            offset: d.offset,
            is_thread_local: d.is_thread_local != 0,
            is_static: d.is_static != 0,
            next_field: d.next_field,
        })
    }

    /// Name of a field from its module's metadata (GetFieldName is not in ISOSDacInterface:
    /// the name comes through the MethodTable's module; `None` if unavailable).
    pub fn module_name(&self, module: u64) -> Result<String> {
        let g = lock();
        let sos = self.sos_ref(&g);
        self.module_path(&sos, module).ok_or(DacError::Call {
            call: "GetModuleData/GetPEFileName",
            hr: super::com::E_FAIL as u32,
        })
    }

    /// Module metadata location: (metadata address, size) in the target.
    pub fn module_metadata(&self, module: u64) -> Result<(u64, u64)> {
        let g = lock();
        let d = self.module_data_raw(&self.sos_ref(&g), module)?;
        Ok((d.metadata_start, d.metadata_size))
    }

    pub(super) fn read_target_u64(&self, addr: u64) -> Option<u64> {
        let g = self.shared.source.read().unwrap_or_else(|e| e.into_inner());
        g.as_ref()?.read_u64(addr).ok()
    }

    /// Object facts from the DAC (used for arrays: element type, rank, data pointer).
    pub fn object_data(&self, obj: u64) -> Result<ObjectData> {
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut d = DacpObjectData::default();
        // SAFETY: GetObjectData(u64, *DacpObjectData).
        check("GetObjectData", unsafe {
            call!(sos, get_object_data, obj, &mut d)
        })?;
        Ok(ObjectData {
            method_table: d.method_table,
            object_type: d.object_type,
            size: d.size,
            element_type_handle: d.element_type_handle,
            element_type: d.element_type,
            rank: d.rank,
            num_components: d.num_components,
            component_size: d.component_size,
            array_data: d.array_data,
        })
    }

    /// The module's IMetaDataImport, obtained once through IXCLRDataModule.
    fn metadata_import(&self, module: u64) -> Option<ComPtr> {
        const IID_IMETADATA_IMPORT: Guid = guid("7DAC8207-D3AE-4c75-9B67-92801A497D44");
        let mut cache = self.md_imports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(&module) {
            return v.map(|p| ComPtr(p as *mut c_void));
        }
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut m = std::ptr::null_mut();
        // SAFETY: GetModule(u64 addr, IXCLRDataModule** out); QI on the returned module.
        let imp = unsafe {
            if call!(sos, get_module, module, &mut m) >= 0 && !m.is_null() {
                let md = ComPtr(m);
                let r = md.query(&IID_IMETADATA_IMPORT);
                md.release();
                r
            } else {
                None
            }
        };
        cache.insert(module, imp.map(|p| p.0 as usize));
        imp
    }

    /// A field's name from its module's metadata (FieldDef token).
    pub fn field_name(&self, module: u64, token: u32) -> Result<String> {
        let imp = self
            .metadata_import(module)
            .ok_or(DacError::Unsupported("IMetaDataImport"))?;
        let g = lock();
        // SAFETY: the cached pointer holds a reference for the Dac's lifetime.
        let imp = unsafe { ComRef::<MetaDataImport>::add_ref(&g, imp.0) }
            .ok_or(DacError::Unsupported("IMetaDataImport"))?;
        let mut buf = [0u16; 512];
        let (mut class, mut len, mut attr, mut sig_len, mut cplus, mut value_len) =
            (0u32, 0u32, 0u32, 0u32, 0u32, 0u32);
        let (mut sig, mut value) = (std::ptr::null::<u8>(), std::ptr::null::<c_void>());
        // SAFETY: GetFieldProps with a name buffer of its stated length and every out pointer
        // valid.
        let hr = unsafe {
            call!(
                imp,
                get_field_props,
                token,
                &mut class,
                buf.as_mut_ptr(),
                buf.len() as u32,
                &mut len,
                &mut attr,
                &mut sig,
                &mut sig_len,
                &mut cplus,
                &mut value,
                &mut value_len
            )
        };
        check("GetFieldProps", hr)?;
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        Ok(String::from_utf16_lossy(&buf[..end]))
    }

    /// Every module loaded in every AppDomain, sorted, each once, and the domains whose
    /// assemblies the DAC would not list (their modules are missing). The system domain is not
    /// asked: it is no AppDomain, and the DAC's GetAssemblyList refuses it by design
    /// (E_INVALIDARG); its assemblies are loaded in the AppDomain too.
    pub fn modules(&self) -> Result<LoadedModules> {
        let domains = self.app_domains()?;
        let mut out = LoadedModules::default();
        for d in domains.domains.iter().copied().filter(|&d| d != 0) {
            match self.domain_modules(d) {
                Ok(m) => out.modules.extend(m),
                Err(_) => out.unlisted_domains.push(d),
            }
        }
        out.modules.sort_unstable();
        out.modules.dedup();
        Ok(out)
    }

    /// The MethodTables of the types a module has loaded (its TypeDef map).
    pub fn module_types(&self, module: u64) -> Result<Vec<u64>> {
        unsafe extern "C" fn collect(_index: u32, mt: u64, token: *mut c_void) {
            // SAFETY: `token` is the Vec passed below, alive for the duration of the call.
            let v = unsafe { &mut *(token as *mut Vec<u64>) };
            if mt != 0 {
                v.push(mt);
            }
        }
        let g = lock();
        let sos = self.sos_ref(&g);
        let mut out: Vec<u64> = Vec::new();
        let token = &mut out as *mut Vec<u64> as *mut c_void;
        // SAFETY: TraverseModuleMap(kind, module, callback, token); kind 0 =
        // TypeDefToMethodTable. The callback only runs during this call.
        check("TraverseModuleMap", unsafe {
            call!(sos, traverse_module_map, 0, module, collect, token)
        })?;
        Ok(out)
    }
}

/// The modules of a runtime's AppDomains, as [`Dac::modules`] lists them.
#[derive(Debug, Default, Clone)]
pub struct LoadedModules {
    /// Module addresses, sorted, each once.
    pub modules: Vec<u64>,
    /// Domains whose modules the DAC would not list, in the order met: their modules are not
    /// in `modules`.
    pub unlisted_domains: Vec<u64>,
}

impl LoadedModules {
    /// The warning for the domains left out, ending with what that costs the caller
    /// (`consequence`, e.g. "their statics are not roots"); `None` when none was.
    pub fn warning(&self, consequence: &str) -> Option<String> {
        let first = self.unlisted_domains.first()?;
        Some(format!(
            "the modules of {} AppDomain(s) could not be listed (first: domain {first:#x}): {consequence}",
            self.unlisted_domains.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::LoadedModules;

    #[test]
    fn no_warning_when_every_domain_was_listed() {
        let m = LoadedModules {
            modules: vec![0x10, 0x20],
            unlisted_domains: Vec::new(),
        };
        assert_eq!(m.warning("anything"), None);
    }

    #[test]
    fn warning_counts_the_unlisted_domains_and_names_the_first() {
        let m = LoadedModules {
            modules: vec![0x10],
            unlisted_domains: vec![0xabc0, 0xdef0],
        };
        assert_eq!(
            m.warning("their statics are not roots").as_deref(),
            Some(
                "the modules of 2 AppDomain(s) could not be listed (first: domain 0xabc0): \
                 their statics are not roots"
            )
        );
    }
}
