//! Progress of a run on stderr: a bar on a terminal, a line every 10% elsewhere (CI
//! logs keep every line, so a redrawn bar would flood them).

use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Bar,
    Lines,
}

pub struct Progress {
    total: usize,
    done: AtomicUsize,
    bar: Option<ProgressBar>,
    lines: bool,
}

impl Progress {
    pub fn new(total: usize, style: Option<Style>) -> Self {
        let bar = (style == Some(Style::Bar) && total > 0).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            if let Ok(s) = ProgressStyle::with_template(
                "{spinner} {wide_bar} {pos}/{len} samples · {elapsed} (eta {eta})",
            ) {
                bar.set_style(s);
            }
            bar
        });
        Progress {
            total,
            done: AtomicUsize::new(0),
            bar,
            lines: style == Some(Style::Lines),
        }
    }

    pub fn tick(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        } else if self.lines && crossed_tenth(done, self.total) {
            eprintln!(
                "progress: {}% ({done}/{} samples)",
                done * 100 / self.total,
                self.total
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Whether `done` is the first count at or past a new multiple of 10% of `total`.
fn crossed_tenth(done: usize, total: usize) -> bool {
    total > 0 && done * 10 / total > (done - 1) * 10 / total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_tenth() {
        let lines = (1..=1000).filter(|&d| crossed_tenth(d, 1000)).count();
        assert_eq!(lines, 10);
        let lines: Vec<usize> = (1..=7).filter(|&d| crossed_tenth(d, 7)).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5, 6, 7]);
    }
}
