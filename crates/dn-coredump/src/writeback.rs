//! Write-behind: a second thread writes chunks to the core file while the
//! tracer thread reads the next ones from the target, so the target is
//! stopped for about max(read, write) instead of their sum. A few fixed
//! buffers circulate between the two threads; nothing grows with the dump.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use crate::error::CollectError;
use crate::output::OutputFile;

/// Buffers in flight (each `chunk` bytes).
const BUFFERS: usize = 4;

struct Job {
    offset: u64,
    buf: Vec<u8>,
    len: usize,
}

/// The reading side's handle.
pub struct WriteBehind<'scope> {
    jobs: Option<SyncSender<Job>>,
    free: Receiver<Vec<u8>>,
    writer: Option<ScopedJoinHandle<'scope, Result<(), CollectError>>>,
}

impl<'scope> WriteBehind<'scope> {
    pub fn start<'env>(
        scope: &'scope Scope<'scope, 'env>,
        out: &'env OutputFile,
        chunk: usize,
    ) -> Self {
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(BUFFERS);
        let (free_tx, free_rx) = channel::<Vec<u8>>();
        for _ in 0..BUFFERS {
            let _ = free_tx.send(vec![0u8; chunk]);
        }
        let writer = scope.spawn(move || write_loop(out, jobs_rx, free_tx));
        WriteBehind {
            jobs: Some(jobs_tx),
            free: free_rx,
            writer: Some(writer),
        }
    }

    /// A buffer to fill; waits while all are being written.
    pub fn buffer(&mut self) -> Result<Vec<u8>, CollectError> {
        match self.free.recv() {
            Ok(b) => Ok(b),
            // The writer stopped: its error is what matters.
            Err(_) => Err(self.writer_error()),
        }
    }

    /// Queues `buf[..len]` to be written (sparsely) at `offset`.
    pub fn write(&mut self, offset: u64, buf: Vec<u8>, len: usize) -> Result<(), CollectError> {
        let sent = self
            .jobs
            .as_ref()
            .map(|tx| tx.send(Job { offset, buf, len }));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self.writer_error()),
        }
    }

    /// Hands back a buffer that was not needed.
    pub fn give_back(&mut self, buf: Vec<u8>) {
        // Len 0 jobs are not written; they only return the buffer.
        let _ = self.write(0, buf, 0);
    }

    fn writer_error(&mut self) -> CollectError {
        self.jobs = None;
        match self.writer.take().map(|h| h.join()) {
            Some(Ok(Err(e))) => e,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            _ => CollectError::Write {
                path: Default::default(),
                source: std::io::Error::other("writer thread stopped"),
            },
        }
    }

    /// Waits for every queued write; returns the first write error.
    pub fn finish(mut self) -> Result<(), CollectError> {
        self.jobs = None;
        match self.writer.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }
}

fn write_loop(
    out: &OutputFile,
    jobs: Receiver<Job>,
    free: Sender<Vec<u8>>,
) -> Result<(), CollectError> {
    for job in jobs {
        if job.len > 0 {
            out.write_sparse(job.offset, &job.buf[..job.len])?;
        }
        // The reader may be gone already (error path); nothing to do then.
        let _ = free.send(job.buf);
    }
    Ok(())
}
