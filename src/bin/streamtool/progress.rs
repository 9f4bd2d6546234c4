//! `--progress` for `pipe`, `connect` and `serve`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use streamtool::relay::Meter;

use crate::cli::ProgressWhen;

/// Whether to show progress for the flag's value.
pub fn enabled(when: Option<ProgressWhen>) -> bool {
    match when {
        Some(ProgressWhen::Always) => true,
        Some(ProgressWhen::Auto) => std::io::stderr().is_terminal(),
        Some(ProgressWhen::Never) | None => false,
    }
}

/// `--progress`: per-direction bytes, rate and elapsed time on stderr. On a terminal, two
/// live lines (indicatif); elsewhere (`--progress=always` into a file or pipe), a plain line
/// per direction every second.
pub struct Progress {
    bars: Vec<indicatif::ProgressBar>,
    task: tokio::task::JoinHandle<()>,
    /// Plain mode: what to print once more at the end.
    plain: Option<PlainProgress>,
    /// What the bars count, read once more at the end: the ticker's last reading may be
    /// up to a tick old, so the final numbers on screen come from here.
    meters: [Meter; 2],
}

#[derive(Clone)]
struct PlainProgress {
    labels: [String; 2],
    meters: [Meter; 2],
    started: Instant,
}

impl PlainProgress {
    fn print(&self) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        for (label, meter) in self.labels.iter().zip(&self.meters) {
            let bytes = meter.get();
            let rate = bytes as f64 / secs / (1024.0 * 1024.0);
            crate::ui::say(&format!("{label}: {bytes} bytes, {rate:.1} MiB/s, {secs:.1}s"));
        }
    }
}

impl Progress {
    /// Starts showing two directions, `labels[i]` counted by `meters[i]`.
    pub fn start(labels: [String; 2], meters: [Meter; 2]) -> Progress {
        let [ab, ba] = meters;
        if !std::io::stderr().is_terminal() {
            let plain = PlainProgress { labels, meters: [ab, ba], started: Instant::now() };
            let ticker = plain.clone();
            let task = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    ticker.print();
                }
            });
            let meters = plain.meters.clone();
            return Progress { bars: Vec::new(), task, plain: Some(plain), meters };
        }
        let multi = indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr());
        let style = indicatif::ProgressStyle::with_template(
            "{prefix:>30} {bytes:>10} {binary_bytes_per_sec:>12} {elapsed_precise}",
        )
        .expect("valid template");
        let bars: Vec<indicatif::ProgressBar> = labels
            .into_iter()
            .map(|label| {
                let bar = multi.add(indicatif::ProgressBar::no_length());
                bar.set_style(style.clone());
                bar.set_prefix(label);
                bar
            })
            .collect();
        let updated = bars.clone();
        let meters = [ab.clone(), ba.clone()];
        let task = tokio::spawn(async move {
            loop {
                updated[0].set_position(ab.get());
                updated[1].set_position(ba.get());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Progress { bars, task, plain: None, meters }
    }

    /// Stops, leaving the final numbers on screen.
    pub fn finish(self) {
        self.task.abort();
        for (bar, meter) in self.bars.iter().zip(&self.meters) {
            bar.set_position(meter.get());
            bar.finish();
        }
        if let Some(plain) = self.plain {
            plain.print();
        }
    }
}
