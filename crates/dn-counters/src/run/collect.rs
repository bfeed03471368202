//! `collect`: every sample into a file or stdout.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{event_loop, options, stop_flag, target_of, Consumer, Control, Outcome};
use crate::args::CollectArgs;
use crate::collect::{self, Format, SampleWriter};
use crate::output::{Committed, PendingFile};
use crate::sample::Sample;
use crate::watch::{ChildOutput, Watch};

pub fn collect(a: &CollectArgs) -> Result<()> {
    let output = a.output.clone().unwrap_or_else(|| {
        format!(
            "counter.{}",
            match a.format {
                Format::Csv => "csv",
                Format::Json => "json",
                Format::Jsonl => "jsonl",
            }
        )
    });
    if output.is_empty() {
        bail!("Output cannot be an empty string");
    }
    let to_stdout = output == "-";
    let opts = options(&a.session, ChildOutput::Stderr)?;
    let target = target_of(&a.session)?;
    let stop = stop_flag()?;
    // The output is not touched before the first sample: everything goes to a temporary file
    // beside it first (see `output`).
    let mut pending = match to_stdout {
        true => None,
        false => Some(PendingFile::create(Path::new(&output)).with_context(|| {
            format!("cannot write {output} (its temporary file beside it cannot be created)")
        })?),
    };
    let sink: Box<dyn Write + Send> = match &pending {
        None => Box::new(io::stdout()),
        Some(p) => Box::new(io::BufWriter::new(p.writer()?)),
    };
    let mut watch = Watch::start(&target, &opts)?;
    let writer = collect::writer(a.format, sink, &collect::Target::of(&watch))?;
    if !to_stdout {
        eprintln!(
            "Collecting counters of process {} into {output}. Press Ctrl-C to stop.",
            watch.pid
        );
    }
    let mut c = Collector {
        writer,
        pending: pending.as_mut(),
    };
    let refresh = Duration::from_secs(u64::from(a.session.refresh_interval));
    let result = event_loop(&mut watch, refresh, a.session.duration, &stop, &mut c);
    let finished = c.writer.finish();
    let outcome = result?;
    match finished {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e).context("cannot finish the output"),
    }
    if let Outcome::TargetExited(t) | Outcome::SessionEnded(t) = &outcome {
        eprintln!("{t}");
    }
    let Some(pending) = pending.as_mut() else {
        return Ok(());
    };
    if pending.is_committed() {
        eprintln!("File saved to {output}");
        return Ok(());
    }
    // No sample came. Ended by the user (q, Ctrl-C, --duration): an empty but valid file, unless
    // that would replace one. Ended by the target: a failure, and nothing is written.
    match outcome {
        Outcome::TargetExited(_) | Outcome::SessionEnded(_) => {
            bail!(
                "no sample was received from process {}; {output} was not written",
                watch.pid
            )
        }
        Outcome::Quit | Outcome::Signal | Outcome::DurationElapsed => {
            match pending.commit_if_absent() {
                Ok(Committed::Written) => eprintln!("File saved to {output} (no samples)"),
                Ok(Committed::KeptExisting) => {
                    eprintln!("No sample was received; the existing {output} was left unchanged.")
                }
                Err(e) => return Err(e).with_context(|| format!("cannot write {output}")),
            }
        }
    }
    Ok(())
}

struct Collector<'a> {
    writer: Box<dyn SampleWriter + Send>,
    /// The output file until it has its name (after the first sample).
    pending: Option<&'a mut PendingFile>,
}

impl Consumer for Collector<'_> {
    fn samples(&mut self, samples: Vec<Sample>, _: &[String]) -> Result<Control> {
        for s in &samples {
            match self.writer.write(s) {
                Ok(()) => {}
                // Reader went away (`| head`): a normal way to stop.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Control::Quit),
                Err(e) => return Err(e).context("cannot write the output"),
            }
        }
        if !samples.is_empty() {
            // Written and flushed: the file may now take the output's name.
            if let Some(p) = self.pending.take() {
                p.commit_replacing()
                    .context("cannot give the output file its name")?;
            }
        }
        Ok(Control::Continue)
    }

    fn warning(&mut self, text: String) {
        eprintln!("Warning: {text}");
    }
}
