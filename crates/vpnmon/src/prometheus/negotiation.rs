//! Which exposition format a scraper asked for, from its `Accept` header.
//!
//! Prometheus itself sends `application/openmetrics-text;version=1.0.0,
//! application/openmetrics-text;version=0.0.1;q=0.75,
//! text/plain;version=0.0.4;q=0.5,*/*;q=0.1` and gets OpenMetrics; a scraper
//! that asks for `text/plain`, for anything (`*/*`), for nothing we serve, or
//! sends no `Accept` gets the text format 0.0.4, as client_golang answers.
//! Media ranges are taken by quality (`q`, default 1), ties in header order;
//! `q=0` rules a range out. An OpenMetrics range with a version other than
//! 1.0.0 or 0.0.1 is not one we serve (both read our output the same way).

/// An exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Text,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The format for an `Accept` header value (`None`: no header).
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let mut ranges: Vec<(f32, Option<Format>)> = accept
            .split(',')
            .filter_map(|range| {
                let (format, q) = parse_range(range);
                (q > 0.0).then_some((q, format))
            })
            .collect();
        // Stable: equal qualities keep header order.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranges
            .into_iter()
            .find_map(|(_, f)| f)
            .unwrap_or(Format::Text)
    }
}

/// One media range: the format it selects (if any) and its quality.
fn parse_range(range: &str) -> (Option<Format>, f32) {
    let mut parts = range.split(';').map(str::trim);
    let media = parts.next().unwrap_or("").to_ascii_lowercase();
    let mut q = 1.0_f32;
    let mut version = None;
    for param in parts {
        let Some((k, v)) = param.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            // An unreadable quality rules the range out rather than
            // promoting it to 1.
            "q" => {
                q = v
                    .parse::<f32>()
                    .ok()
                    .filter(|q| q.is_finite())
                    .unwrap_or(0.0)
            }
            "version" => version = Some(v.to_string()),
            _ => {}
        }
    }
    let format = match media.as_str() {
        "application/openmetrics-text" => match version.as_deref() {
            None | Some("1.0.0") | Some("0.0.1") => Some(Format::OpenMetrics),
            Some(_) => None,
        },
        "text/plain" => match version.as_deref() {
            None | Some("0.0.4") => Some(Format::Text),
            Some(_) => None,
        },
        "text/*" | "*/*" => Some(Format::Text),
        _ => None,
    };
    (format, q)
}

#[cfg(test)]
mod tests {
    use super::Format::{self, OpenMetrics, Text};

    fn n(accept: &str) -> Format {
        Format::negotiate(Some(accept))
    }

    #[test]
    fn no_accept_header_gets_text() {
        assert_eq!(Format::negotiate(None), Text);
    }

    #[test]
    fn prometheus_scrape_header_gets_openmetrics() {
        // Prometheus 2.42's scrape Accept header, verbatim.
        assert_eq!(
            n(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            ),
            OpenMetrics
        );
    }

    #[test]
    fn text_plain_gets_text() {
        assert_eq!(n("text/plain"), Text);
        assert_eq!(n("text/plain; version=0.0.4"), Text);
        assert_eq!(n("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), Text);
    }

    #[test]
    fn wildcards_and_unknown_types_get_text() {
        assert_eq!(n("*/*"), Text);
        assert_eq!(n("text/*"), Text);
        assert_eq!(n("application/json"), Text);
        assert_eq!(n(""), Text);
    }

    #[test]
    fn openmetrics_when_asked_for() {
        assert_eq!(n("application/openmetrics-text"), OpenMetrics);
        assert_eq!(
            n("Application/OpenMetrics-Text; version=\"1.0.0\""),
            OpenMetrics
        );
        assert_eq!(n("application/openmetrics-text;version=0.0.1"), OpenMetrics);
    }

    #[test]
    fn quality_decides_and_ties_keep_header_order() {
        assert_eq!(
            n("text/plain;q=0.9, application/openmetrics-text"),
            OpenMetrics
        );
        assert_eq!(
            n("application/openmetrics-text;q=0.4, text/plain;q=0.5"),
            Text
        );
        assert_eq!(n("text/plain, application/openmetrics-text"), Text);
        assert_eq!(n("application/openmetrics-text, text/plain"), OpenMetrics);
    }

    #[test]
    fn ruled_out_and_unknown_versions_are_skipped() {
        assert_eq!(n("application/openmetrics-text;q=0"), Text);
        assert_eq!(n("application/openmetrics-text;q=abc"), Text);
        assert_eq!(n("application/openmetrics-text;version=2.0.0"), Text);
        assert_eq!(
            n("text/plain;version=1.0.0, application/openmetrics-text;q=0.2"),
            OpenMetrics
        );
    }
}
