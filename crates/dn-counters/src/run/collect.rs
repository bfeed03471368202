//! `collect`: every sample into a file or stdout.

use std::io::{self, Write};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{event_loop, options, stop_flag, target_of, Consumer, Control, Outcome};
use crate::args::CollectArgs;
use crate::collect::{self, Format, SampleWriter};
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
    let sink: Box<dyn Write + Send> = if to_stdout {
        Box::new(io::stdout())
    } else {
        Box::new(io::BufWriter::new(
            std::fs::File::create(&output).with_context(|| format!("cannot create {output}"))?,
        ))
    };
    let mut watch = Watch::start(&target, &opts)?;
    let writer = collect::writer(a.format, sink, watch.pid)?;
    if !to_stdout {
        eprintln!(
            "Collecting counters of process {} into {output}. Press Ctrl-C to stop.",
            watch.pid
        );
    }
    let mut c = Collector { writer };
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
    if !to_stdout {
        eprintln!("File saved to {output}");
    }
    Ok(())
}

struct Collector {
    writer: Box<dyn SampleWriter + Send>,
}

impl Consumer for Collector {
    fn samples(&mut self, samples: Vec<Sample>, _: &[String]) -> Result<Control> {
        for s in &samples {
            match self.writer.write(s) {
                Ok(()) => {}
                // Reader went away (`| head`): a normal way to stop.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Control::Quit),
                Err(e) => return Err(e).context("cannot write the output"),
            }
        }
        Ok(Control::Continue)
    }

    fn warning(&mut self, text: String) {
        eprintln!("Warning: {text}");
    }
}
