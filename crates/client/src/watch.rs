//! `monitor watch`: live latency and loss from the newest raw (period 1)
//! datapoints. On a terminal one line is redrawn in place, with a
//! sparkline of recent windows; otherwise (a pipe, a log file) each new
//! datapoint is printed on a line of its own, as text or JSON.

use crate::OutputFormat;
use crate::session::Session;
use crate::stats::{self, Point, fmt_ms, num};
use anyhow::Result;
use chrono::Utc;
use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// How far back the first refresh looks.
const LOOKBACK_MS: i64 = 5 * 60 * 1000;
/// Windows kept for the sparkline.
const HISTORY: usize = 20;

/// A sparkline of latencies; a window without any reply is `×`.
pub fn sparkline(values: &VecDeque<Option<f64>>) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let lo = known.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = known.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|v| match v {
            None => '×',
            Some(x) if hi > lo => {
                let i = ((x - lo) / (hi - lo) * 7.0).round() as usize;
                BARS[i.min(7)]
            }
            Some(_) => BARS[0],
        })
        .collect()
}

fn unit(v: Option<f64>, digits: usize, unit: &str) -> String {
    match v {
        Some(_) => format!("{}{unit}", num(v, digits)),
        None => "-".into(),
    }
}

/// One datapoint as a line of text.
pub fn line(p: &Point) -> String {
    format!(
        "{}  latency_avg={}  latency_max={}  loss={}",
        fmt_ms(p.ts),
        unit(p.avg, 3, "ms"),
        unit(p.max, 3, "ms"),
        unit(p.loss, 1, "%")
    )
}

/// The redrawn terminal line; short enough for 80 columns.
fn status_line(p: Option<&Point>, history: &VecDeque<Option<f64>>) -> String {
    match p {
        None => "waiting for datapoints...".to_string(),
        Some(p) => format!(
            "{}  latency {} (max {})  loss {}  {}",
            chrono::DateTime::from_timestamp_millis(p.ts)
                .map(|t| t.format("%H:%M:%SZ").to_string())
                .unwrap_or_default(),
            unit(p.avg, 3, " ms"),
            num(p.max, 3),
            unit(p.loss, 1, "%"),
            sparkline(history)
        ),
    }
}

/// `monitor watch ID [--interval D] [--count N]`.
pub async fn run(
    s: &mut Session,
    id: &str,
    interval: Duration,
    count: Option<u64>,
    out: OutputFormat,
) -> Result<()> {
    let m = stats::monitor_info(s, id).await?;
    let tty = out == OutputFormat::Table && std::io::stdout().is_terminal();
    if tty {
        println!(
            "monitor {} ({} -> {}, connection {}, status {}), every {:?}; Ctrl-C to stop",
            m.id, m.source, m.destination, m.connection, m.status, interval
        );
    }
    let mut last: Option<Point> = None;
    let mut history: VecDeque<Option<f64>> = VecDeque::with_capacity(HISTORY);
    let mut refreshes: u64 = 0;
    let stdout = std::io::stdout();
    loop {
        refreshes += 1;
        let now = Utc::now().timestamp_millis();
        let from = last.map_or(now - LOOKBACK_MS, |p| p.ts);
        // `to` a little ahead so that a window stamped just now is in range.
        let fetched = stats::fetch(s, &m.connection, 1, from, now + 1000).await;
        let points = match fetched {
            Ok(p) => p,
            // A failed first refresh is a configuration problem: fail.
            Err(e) if refreshes == 1 => return Err(e),
            Err(e) => {
                if tty {
                    print!("\r\x1b[2Kerror: {e:#}");
                    let _ = stdout.lock().flush();
                } else {
                    eprintln!("vpnmon: {e:#}");
                }
                Vec::new()
            }
        };
        let new: Vec<Point> = points
            .into_iter()
            .filter(|p| last.is_none_or(|l| p.ts > l.ts))
            .collect();
        // The first refresh shows the newest window only (as context).
        let shown: &[Point] = if last.is_none() && !tty {
            new.last().map(std::slice::from_ref).unwrap_or(&[])
        } else {
            &new
        };
        for p in &new {
            if history.len() == HISTORY {
                history.pop_front();
            }
            history.push_back(p.avg);
        }
        if let Some(p) = new.last() {
            last = Some(*p);
        }
        if tty {
            print!("\r\x1b[2K{}", status_line(last.as_ref(), &history));
        } else {
            for p in shown {
                match out {
                    OutputFormat::Json => println!("{}", p.json()),
                    OutputFormat::Table => println!("{}", line(p)),
                }
            }
        }
        let _ = stdout.lock().flush();
        if count.is_some_and(|c| refreshes >= c) {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    if tty {
        println!();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_between_min_and_max_and_marks_lost_windows() {
        let h: VecDeque<Option<f64>> = [Some(1.0), Some(8.0), None, Some(4.5)].into();
        assert_eq!(sparkline(&h), "▁█×▅");
        let flat: VecDeque<Option<f64>> = [Some(2.0), Some(2.0)].into();
        assert_eq!(sparkline(&flat), "▁▁");
    }

    #[test]
    fn the_terminal_line_fits_80_columns() {
        let p = Point {
            ts: 1_764_139_560_000,
            avg: Some(123.456),
            max: Some(999.999),
            loss: Some(100.0),
        };
        let h: VecDeque<Option<f64>> = (0..HISTORY).map(|i| Some(i as f64)).collect();
        let l = status_line(Some(&p), &h);
        assert!(
            l.starts_with("06:46:00Z  latency 123.456 ms (max 999.999)  loss 100.0%  ▁"),
            "{l}"
        );
        assert!(l.chars().count() < 80, "{l}");
    }

    #[test]
    fn a_datapoint_line_names_each_value() {
        let p = Point {
            ts: 1_764_139_560_000,
            avg: Some(0.5),
            max: None,
            loss: Some(33.3333),
        };
        assert_eq!(
            line(&p),
            "2025-11-26T06:46:00Z  latency_avg=0.500ms  latency_max=-  loss=33.3%"
        );
    }
}
