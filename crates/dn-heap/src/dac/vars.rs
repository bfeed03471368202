//! Arguments and locals of a managed frame through IXCLRDataFrame and IXCLRDataValue: names
//! (arguments only), locations and values as SOS's `clrstack -a` shows them.

use super::iface::*;
use super::stack::{StackFrame, WalkOptions};
use super::*;

const ERROR_BUFFER_OVERFLOW: HResult = 0x8007_006F_u32 as i32;
/// Longest value we copy out of the DAC (SOS prints only 1, 2, 4 and 8-byte values).
const MAX_VALUE_BYTES: u32 = 64;

/// Where a variable lives.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "at", rename_all = "snake_case")]
pub enum VarLocation {
    Memory(#[serde(serialize_with = "crate::commands::ser_hex")] u64),
    Register,
    /// The DAC knows no single place (optimized away, or several pieces).
    Unknown,
}

/// A variable's value as SOS shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "bits", rename_all = "snake_case")]
pub enum VarValue {
    /// 1, 2, 4 or 8 bytes, zero-extended.
    Bits(#[serde(serialize_with = "crate::commands::ser_hex")] u64),
    /// A larger value (a struct): SOS prints 0 and the location.
    Large,
    /// The DAC has no location for it.
    NoData,
    /// It has one but could not read it.
    Unreadable,
}

/// An argument or local of a managed frame.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Variable {
    /// Arguments are named from metadata; locals never are (the DAC has no PDB).
    pub name: Option<String>,
    pub location: VarLocation,
    pub value: VarValue,
}

impl Dac {
    /// Arguments and locals of the walk's current (managed) frame.
    pub(super) fn variables<'g>(
        &self,
        g: &'g DacGuard,
        walk: &ComRef<'g, XclrDataStackWalk>,
        f: &mut StackFrame,
        opts: WalkOptions,
    ) {
        let mut raw = std::ptr::null_mut();
        // SAFETY: GetFrame(IXCLRDataFrame**).
        let hr = unsafe { call!(walk, get_frame, &mut raw) };
        // SAFETY: on success an owned IXCLRDataFrame.
        let Some(frame) = (unsafe { ComRef::<XclrDataFrame>::from_raw(g, raw) }) else {
            return;
        };
        if hr < 0 {
            return;
        }
        if opts.arguments {
            let mut n = 0u32;
            // SAFETY: GetNumArguments(*u32).
            let hr = unsafe { call!(frame, get_num_arguments, &mut n) };
            f.arguments = Some(if hr >= 0 {
                (0..n.min(1024))
                    .filter_map(|i| variable(g, &frame, i, true))
                    .collect()
            } else {
                Vec::new()
            });
        }
        if opts.locals {
            let mut n = 0u32;
            // SAFETY: GetNumLocalVariables(*u32).
            let hr = unsafe { call!(frame, get_num_local_variables, &mut n) };
            f.locals = Some(if hr >= 0 {
                (0..n.min(1024))
                    .filter_map(|i| variable(g, &frame, i, false))
                    .collect()
            } else {
                Vec::new()
            });
        }
    }
}

/// Argument (or local) `i` of a frame: name, location and value.
fn variable<'g>(
    g: &'g DacGuard,
    frame: &ComRef<'g, XclrDataFrame>,
    i: u32,
    argument: bool,
) -> Option<Variable> {
    let mut raw = std::ptr::null_mut();
    let mut name = [0u16; 512];
    let mut len = 0u32;
    // SAFETY: Get{Argument,LocalVariable}ByIndex(i, IXCLRDataValue**, bufLen, *nameLen, buf):
    // the name buffer holds `name.len()` UTF-16 units.
    let hr = unsafe {
        if argument {
            call!(
                frame,
                get_argument_by_index,
                i,
                &mut raw,
                name.len() as u32,
                &mut len,
                name.as_mut_ptr()
            )
        } else {
            call!(
                frame,
                get_local_variable_by_index,
                i,
                &mut raw,
                name.len() as u32,
                &mut len,
                name.as_mut_ptr()
            )
        }
    };
    // SAFETY: on success an owned IXCLRDataValue.
    let value = unsafe { ComRef::<XclrDataValue>::from_raw(g, raw) };
    if hr < 0 {
        return None;
    }
    let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    let name = (end > 0).then(|| String::from_utf16_lossy(&name[..end]));
    let Some(value) = value else {
        return Some(Variable {
            name,
            location: VarLocation::Unknown,
            value: VarValue::NoData,
        });
    };
    let mut n = 0u32;
    // SAFETY: GetNumLocations(*u32).
    let mut location = VarLocation::Unknown;
    if unsafe { call!(value, get_num_locations, &mut n) } >= 0 && n == 1 {
        let (mut flags, mut addr) = (0u32, 0u64);
        // SAFETY: GetLocationByIndex(0, *flags, *addr).
        if unsafe { call!(value, get_location_by_index, 0, &mut flags, &mut addr) } >= 0 {
            location = if flags & CLRDATA_VLOC_REGISTER != 0 {
                VarLocation::Register
            } else {
                VarLocation::Memory(addr)
            };
        }
    }
    let mut size = 0u32;
    // SAFETY: GetBytes(0, *size, null): asks for the size.
    let hr = unsafe { call!(value, get_bytes, 0, &mut size, std::ptr::null_mut()) };
    let bits = if hr == ERROR_BUFFER_OVERFLOW {
        if size > MAX_VALUE_BYTES {
            VarValue::Large
        } else {
            let mut buf = [0u8; MAX_VALUE_BYTES as usize];
            let mut got = 0u32;
            // SAFETY: GetBytes(size, *got, buffer of at least `size` bytes).
            let hr = unsafe { call!(value, get_bytes, size, &mut got, buf.as_mut_ptr()) };
            match (hr >= 0, size) {
                (true, 1 | 2 | 4 | 8) => {
                    let mut b = [0u8; 8];
                    b[..size as usize].copy_from_slice(&buf[..size as usize]);
                    VarValue::Bits(u64::from_le_bytes(b))
                }
                (true, _) => VarValue::Large,
                (false, _) => VarValue::Unreadable,
            }
        }
    } else {
        VarValue::NoData
    };
    Some(Variable {
        name,
        location,
        value: bits,
    })
}
