//! ELF core notes, the one format both sides of dn share: `dn-dump collect` writes them, the
//! heap analyzer reads them (cores) and reads build-id notes of modules (cores and live
//! processes). Pure bytes, no I/O; every offset and length from the input is checked.

pub mod notes;
