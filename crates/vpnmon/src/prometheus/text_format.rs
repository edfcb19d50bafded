//! The Prometheus text format 0.0.4, converted line by line from the
//! OpenMetrics text that prometheus-client writes (it writes nothing else).
//!
//! The two formats share the sample syntax (name, label set, value,
//! timestamp) and label escaping (`\\`, `\"`, `\n`); they differ in what the
//! conversion changes:
//! - A counter family is named without `_total` in OpenMetrics
//!   (`# TYPE x counter`, samples `x_total`) and with it in 0.0.4, where a
//!   parser files each sample under the family of the same name: `# HELP`
//!   and `# TYPE` must name `x_total`, or every counter reads as an untyped
//!   family without help (what `promtool check metrics` reported).
//! - `info` families (samples `x_info`) become gauges named `x_info`;
//!   `stateset` becomes a gauge and `unknown` is `untyped`.
//! - `# UNIT` and `# EOF` do not exist in 0.0.4 and are dropped, as are
//!   `_created` samples (creation times of counters, histograms and
//!   summaries, which 0.0.4 has no place for), exemplars and other comments.
//! - Timestamps are seconds in OpenMetrics and milliseconds in 0.0.4.
//! - Infinity is written `+Inf`/`-Inf` (prometheus-client writes `inf`).
//!
//! HELP text is copied verbatim: prometheus-client writes it unescaped, and
//! vpnmon's help texts contain neither backslash nor newline, the only
//! characters that either format escapes there (a test in the parent module
//! holds every registered help to that).

use std::fmt::{self, Write as _};

/// OpenMetrics input the conversion cannot read (a bug in the encoder or in
/// the conversion, never the scraper's fault).
#[derive(Debug, PartialEq, Eq)]
pub struct ConvertError {
    line: usize,
    what: &'static str,
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OpenMetrics line {}: {} (cannot convert to text format 0.0.4)",
            self.line, self.what
        )
    }
}

impl std::error::Error for ConvertError {}

/// The family whose samples follow.
struct Family<'a> {
    name: &'a str,
    kind: &'a str,
}

impl Family<'_> {
    /// Whether `sample` is this family's creation time.
    fn is_created(&self, sample: &str) -> bool {
        matches!(self.kind, "counter" | "histogram" | "summary")
            && sample
                .strip_prefix(self.name)
                .is_some_and(|s| s == "_created")
    }
}

/// Converts an OpenMetrics exposition to the text format 0.0.4.
pub fn from_openmetrics(om: &str) -> Result<String, ConvertError> {
    let mut out = String::with_capacity(om.len() + om.len() / 8);
    // HELP precedes TYPE, but a counter's name in 0.0.4 depends on its type.
    let mut help: Option<(&str, &str)> = None;
    let mut family: Option<Family<'_>> = None;
    for (i, line) in om.lines().enumerate() {
        let err = |what| ConvertError { line: i + 1, what };
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.strip_prefix(' ').unwrap_or(comment);
            let (keyword, rest) = comment.split_once(' ').unwrap_or((comment, ""));
            match keyword {
                "HELP" => {
                    write_help(&mut out, help.take());
                    help = Some(rest.split_once(' ').unwrap_or((rest, "")));
                }
                "TYPE" => {
                    let (name, kind) = rest.split_once(' ').ok_or(err("TYPE without a type"))?;
                    let (text_name, text_kind) = match kind {
                        "counter" => (format!("{name}_total"), "counter"),
                        "gauge" | "histogram" | "summary" => (name.to_string(), kind),
                        "info" => (format!("{name}_info"), "gauge"),
                        "stateset" => (name.to_string(), "gauge"),
                        "unknown" => (name.to_string(), "untyped"),
                        _ => return Err(err("a metric type text format 0.0.4 cannot carry")),
                    };
                    match help.take() {
                        Some((h, text)) if h == name => {
                            write_help(&mut out, Some((&text_name, text)))
                        }
                        other => write_help(&mut out, other),
                    }
                    let _ = writeln!(out, "# TYPE {text_name} {text_kind}");
                    family = Some(Family { name, kind });
                }
                // UNIT, EOF and plain comments have no 0.0.4 counterpart.
                _ => {}
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let s = parse_sample(line).map_err(err)?;
        if family.as_ref().is_some_and(|f| f.is_created(s.name)) {
            continue;
        }
        out.push_str(s.name);
        out.push_str(s.labels);
        out.push(' ');
        out.push_str(normalise_value(s.value));
        if let Some(ts) = s.timestamp {
            let secs: f64 = ts.parse().map_err(|_| err("unreadable timestamp"))?;
            if !secs.is_finite() {
                return Err(err("unreadable timestamp"));
            }
            let _ = write!(out, " {}", (secs * 1000.0).round() as i64);
        }
        out.push('\n');
    }
    write_help(&mut out, help.take());
    Ok(out)
}

/// Writes a pending `# HELP` (a HELP not followed by its TYPE keeps its
/// name).
fn write_help(out: &mut String, help: Option<(&str, &str)>) {
    if let Some((name, text)) = help {
        let _ = writeln!(out, "# HELP {name} {text}");
    }
}

/// One sample line, borrowed from the input.
#[derive(Debug, PartialEq, Eq)]
struct Sample<'a> {
    name: &'a str,
    /// `{...}` as written (escaping is the same in both formats), or empty.
    labels: &'a str,
    value: &'a str,
    timestamp: Option<&'a str>,
}

fn parse_sample(line: &str) -> Result<Sample<'_>, &'static str> {
    let name_end = line.find(['{', ' ']).ok_or("sample without a value")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("sample without a name");
    }
    let mut rest = &line[name_end..];
    let mut labels = "";
    if rest.starts_with('{') {
        let end = label_set_end(rest)?;
        labels = &rest[..end];
        rest = &rest[end..];
    }
    let rest = rest.strip_prefix(' ').ok_or("no space before the value")?;
    let mut fields = rest.split(' ');
    let value = fields
        .next()
        .filter(|v| !v.is_empty())
        .ok_or("sample without a value")?;
    // An exemplar starts with `#`; it has no 0.0.4 form.
    let timestamp = fields.next().filter(|t| !t.is_empty() && *t != "#");
    Ok(Sample {
        name,
        labels,
        value,
        timestamp,
    })
}

/// The byte index just past the `}` that closes the label set `s` opens,
/// skipping quoted values (which may hold `}`, `,`, spaces and escapes).
fn label_set_end(s: &str) -> Result<usize, &'static str> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate().skip(1) {
        match (quoted, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => quoted = false,
            (true, false, _) => {}
            (false, _, b'"') => quoted = true,
            (false, _, b'}') => return Ok(i + 1),
            (false, _, _) => {}
        }
    }
    Err("unterminated label set")
}

fn normalise_value(v: &str) -> &str {
    match v.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => "+Inf",
        "-inf" | "-infinity" => "-Inf",
        "nan" => "NaN",
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family as PcFamily;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::metrics::info::Info;
    use prometheus_client::registry::Registry;
    use std::sync::atomic::AtomicU64;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct L {
        route: String,
    }

    fn encode(r: &Registry) -> String {
        let mut om = String::new();
        prometheus_client::encoding::text::encode(&mut om, r).unwrap();
        om
    }

    /// Real prometheus-client output of every kind vpnmon registers, and an
    /// info, converted exactly (prometheus-client ends each help with `.`).
    #[test]
    fn converts_real_prometheus_client_output() {
        let mut r = Registry::default();
        let c = Counter::<u64>::default();
        c.inc_by(3);
        r.register("app_requests", "Requests served", c);
        let secs = Counter::<f64, AtomicU64>::default();
        secs.inc_by(1.5);
        r.register("app_busy_seconds", "Time spent busy", secs);
        let g = Gauge::<f64, AtomicU64>::default();
        g.set(f64::NAN);
        r.register("app_rtt_seconds", "Last round trip", g);
        let inf = Gauge::<f64, AtomicU64>::default();
        inf.set(f64::INFINITY);
        r.register("app_limit", "A limit", inf);
        let fam = PcFamily::<L, Counter>::default();
        // Label values that a naive split on spaces, `}` or `#` would cut.
        fam.get_or_create(&L {
            route: "/v5/:p/x y}#\"q\"\\".into(),
        })
        .inc();
        r.register("app_by_route", "Requests by route", fam);
        let h = Histogram::new([0.1, 1.0]);
        h.observe(0.5);
        r.register("app_latency_seconds", "Latency", h);
        r.register(
            "app_build",
            "Build information",
            Info::new(vec![("version".to_string(), "1.2".to_string())]),
        );
        let om = encode(&r);
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert_eq!(
            from_openmetrics(&om).unwrap(),
            "# HELP app_requests_total Requests served.\n\
             # TYPE app_requests_total counter\n\
             app_requests_total 3\n\
             # HELP app_busy_seconds_total Time spent busy.\n\
             # TYPE app_busy_seconds_total counter\n\
             app_busy_seconds_total 1.5\n\
             # HELP app_rtt_seconds Last round trip.\n\
             # TYPE app_rtt_seconds gauge\n\
             app_rtt_seconds NaN\n\
             # HELP app_limit A limit.\n\
             # TYPE app_limit gauge\n\
             app_limit +Inf\n\
             # HELP app_by_route_total Requests by route.\n\
             # TYPE app_by_route_total counter\n\
             app_by_route_total{route=\"/v5/:p/x y}#\\\"q\\\"\\\\\"} 1\n\
             # HELP app_latency_seconds Latency.\n\
             # TYPE app_latency_seconds histogram\n\
             app_latency_seconds_sum 0.5\n\
             app_latency_seconds_count 1\n\
             app_latency_seconds_bucket{le=\"0.1\"} 0\n\
             app_latency_seconds_bucket{le=\"1.0\"} 1\n\
             app_latency_seconds_bucket{le=\"+Inf\"} 1\n\
             # HELP app_build_info Build information.\n\
             # TYPE app_build_info gauge\n\
             app_build_info{version=\"1.2\"} 1\n"
        );
    }

    #[test]
    fn created_samples_units_exemplars_and_comments_are_dropped() {
        let om = "# HELP jobs Jobs done.\n\
                  # TYPE jobs counter\n\
                  # UNIT jobs_seconds seconds\n\
                  jobs_total 2 # {trace_id=\"abc\"} 1.0\n\
                  jobs_created 1700000000.5\n\
                  # a comment\n\
                  # HELP wait Waiting.\n\
                  # TYPE wait histogram\n\
                  wait_bucket{le=\"+Inf\"} 0\n\
                  wait_created 1700000000\n\
                  # TYPE level unknown\n\
                  level 1\n\
                  # EOF\n";
        assert_eq!(
            from_openmetrics(om).unwrap(),
            "# HELP jobs_total Jobs done.\n\
             # TYPE jobs_total counter\n\
             jobs_total 2\n\
             # HELP wait Waiting.\n\
             # TYPE wait histogram\n\
             wait_bucket{le=\"+Inf\"} 0\n\
             # TYPE level untyped\n\
             level 1\n"
        );
    }

    #[test]
    fn gauge_samples_named_created_are_kept() {
        let om = "# TYPE x gauge\nx_created 1\n# EOF\n";
        assert_eq!(
            from_openmetrics(om).unwrap(),
            "# TYPE x gauge\nx_created 1\n"
        );
    }

    #[test]
    fn timestamps_turn_from_seconds_to_milliseconds() {
        let om = "# TYPE up gauge\nup 1 1700000000.123\nup{a=\"b\"} 0 1700000001\n# EOF\n";
        assert_eq!(
            from_openmetrics(om).unwrap(),
            "# TYPE up gauge\nup 1 1700000000123\nup{a=\"b\"} 0 1700000001000\n"
        );
    }

    #[test]
    fn unreadable_input_is_an_error_with_its_line() {
        assert_eq!(
            from_openmetrics("# TYPE x gauge\nx{a=\"b} 1\n"),
            Err(ConvertError {
                line: 2,
                what: "unterminated label set"
            })
        );
        assert_eq!(
            from_openmetrics("x\n").map_err(|e| e.what),
            Err("sample without a value")
        );
        assert_eq!(
            from_openmetrics("x 1 soon\n").map_err(|e| e.what),
            Err("unreadable timestamp")
        );
        assert_eq!(
            from_openmetrics("# TYPE x gaugehistogram\n").map_err(|e| e.what),
            Err("a metric type text format 0.0.4 cannot carry")
        );
    }

    #[test]
    fn sample_parts() {
        assert_eq!(
            parse_sample("a_b{x=\"1 2\",y=\"}\"} -3.5e-7 12"),
            Ok(Sample {
                name: "a_b",
                labels: "{x=\"1 2\",y=\"}\"}",
                value: "-3.5e-7",
                timestamp: Some("12"),
            })
        );
    }
}
