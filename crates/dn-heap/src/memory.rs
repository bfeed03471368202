//! A minimal view of a target's address space.

use thiserror::Error;

/// A failed memory access in the target.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MemoryError {
    /// No byte at `addr` is available (not in the dump, or not mapped).
    #[error("memory at 0x{addr:x} is not available in the target")]
    NotAvailable { addr: u64 },
    /// Only part of a typed value could be read.
    #[error("short read at 0x{addr:x}: wanted {wanted} bytes, got {got}")]
    Short {
        addr: u64,
        wanted: usize,
        got: usize,
    },
}

pub type Result<T> = std::result::Result<T, MemoryError>;

/// Something whose virtual memory can be read: a core file or a live process.
pub trait MemorySource: Send + Sync {
    /// Reads up to `buf.len()` bytes at `addr`. Returns how many contiguous bytes were read
    /// (may be fewer than asked, never 0 on success); fails when nothing at `addr` is available.
    /// Memory that is not in the target is never reported as zeros.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize>;

    /// Zero-copy access to `len` bytes at `addr` when the source holds them contiguously
    /// (a memory-mapped core file does). Callers fall back to [`MemorySource::read`] on `None`.
    fn slice(&self, _addr: u64, _len: usize) -> Option<&[u8]> {
        None
    }

    /// Reads exactly `buf.len()` bytes or fails.
    fn read_exact(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let short = MemoryError::Short {
                addr,
                wanted: buf.len(),
                got: done,
            };
            // A read running past the top of the address space is short, not a wrap to 0.
            let Some(at) = addr.checked_add(done as u64) else {
                return Err(short);
            };
            let n = match self.read(at, &mut buf[done..]) {
                Ok(n) => n,
                Err(_) if done > 0 => return Err(short),
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Err(short);
            }
            done += n;
        }
        Ok(())
    }

    fn read_u8(&self, addr: u64) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read_exact(addr, &mut b)?;
        Ok(b[0])
    }

    fn read_u16(&self, addr: u64) -> Result<u16> {
        let mut b = [0u8; 2];
        self.read_exact(addr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    fn read_u32(&self, addr: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read_exact(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn read_u64(&self, addr: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_exact(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn read_i64(&self, addr: u64) -> Result<i64> {
        Ok(self.read_u64(addr)? as i64)
    }

    /// Reads a target pointer (x64 only: 8 bytes).
    fn read_pointer(&self, addr: u64) -> Result<u64> {
        self.read_u64(addr)
    }

    /// Reads `len` bytes into a new vector, exactly. The vector grows as bytes arrive, so a
    /// length read from a damaged target (2^60) fails at the first missing byte instead of
    /// allocating it up front.
    fn read_vec(&self, addr: u64, len: usize) -> Result<Vec<u8>> {
        const FIRST: usize = 64 << 10;
        let mut v = Vec::with_capacity(len.min(FIRST));
        while v.len() < len {
            let old = v.len();
            // Chunks double: few reads for large lengths, small waste for bogus ones.
            let chunk = old.clamp(FIRST, 64 << 20);
            v.resize(old + (len - old).min(chunk), 0);
            let at = addr.checked_add(old as u64);
            match at.map(|at| self.read_exact(at, &mut v[old..])) {
                Some(Ok(())) => {}
                Some(Err(MemoryError::NotAvailable { .. })) if old == 0 => {
                    return Err(MemoryError::NotAvailable { addr })
                }
                Some(Err(MemoryError::Short { got, .. })) => {
                    return Err(MemoryError::Short {
                        addr,
                        wanted: len,
                        got: old + got,
                    })
                }
                Some(Err(_)) | None => {
                    return Err(MemoryError::Short {
                        addr,
                        wanted: len,
                        got: old,
                    })
                }
            }
        }
        Ok(v)
    }
}

impl<T: MemorySource + ?Sized> MemorySource for std::sync::Arc<T> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        (**self).read(addr, buf)
    }
    fn slice(&self, addr: u64, len: usize) -> Option<&[u8]> {
        (**self).slice(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 64 KiB of memory at 0x1000.
    struct Small;

    impl MemorySource for Small {
        fn read(&self, addr: u64, buf: &mut [u8]) -> Result<usize> {
            let end = 0x1000 + 0x10000u64;
            if !(0x1000..end).contains(&addr) {
                return Err(MemoryError::NotAvailable { addr });
            }
            let n = buf.len().min((end - addr) as usize);
            buf[..n].fill(7);
            Ok(n)
        }
    }

    #[test]
    fn huge_lengths_and_the_top_of_memory_are_errors() {
        assert_eq!(
            Small.read_vec(0x1000, 1 << 60),
            Err(MemoryError::Short {
                addr: 0x1000,
                wanted: 1 << 60,
                got: 0x10000
            })
        );
        assert_eq!(
            Small.read_vec(0x0, 1 << 60),
            Err(MemoryError::NotAvailable { addr: 0 })
        );
        assert_eq!(Small.read_vec(0x1000, 16).unwrap(), vec![7u8; 16]);
        let mut b = [0u8; 16];
        assert!(Small.read_exact(u64::MAX - 4, &mut b).is_err());
    }
}
