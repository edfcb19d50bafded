//! The metrics of namespace `SYS.VPN`, one table for the Cloud Eye metric
//! API and the alarm rules: each metric's name, the dimension naming its
//! connection, its unit and what of a probe window it measures; and the
//! filters that combine the windows of a period.

use serde::{Deserialize, Serialize};

/// The namespace of vpnmon's metrics.
pub const NAMESPACE: &str = "SYS.VPN";

/// What a metric measures of a probe window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// The window's average round-trip time (ms).
    Latency,
    /// The window's largest round-trip time (ms).
    MaxLatency,
    /// The window's loss (%).
    Loss,
}

/// A metric of `SYS.VPN`: what the CES API serves and alarm rules watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VpnMetric {
    LinkAverageLatency,
    LinkMaxLatency,
    LinkPacketLossRate,
    PublicAverageLatency,
    PublicMaxLatency,
    PublicPacketLossRate,
}

impl VpnMetric {
    /// Every metric.
    pub const ALL: [VpnMetric; 6] = [
        VpnMetric::LinkAverageLatency,
        VpnMetric::LinkMaxLatency,
        VpnMetric::LinkPacketLossRate,
        VpnMetric::PublicAverageLatency,
        VpnMetric::PublicMaxLatency,
        VpnMetric::PublicPacketLossRate,
    ];

    /// The metric's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            VpnMetric::LinkAverageLatency => "link_average_latency",
            VpnMetric::LinkMaxLatency => "link_max_latency",
            VpnMetric::LinkPacketLossRate => "link_packet_loss_rate",
            VpnMetric::PublicAverageLatency => "public_average_latency",
            VpnMetric::PublicMaxLatency => "public_max_latency",
            VpnMetric::PublicPacketLossRate => "public_packet_loss_rate",
        }
    }

    /// The dimension that names the connection.
    pub fn dimension(self) -> &'static str {
        match self {
            VpnMetric::LinkAverageLatency
            | VpnMetric::LinkMaxLatency
            | VpnMetric::LinkPacketLossRate => "evpn_connection_id",
            _ => "vpn_connection_id",
        }
    }

    /// The metric's unit on the wire.
    pub fn unit(self) -> &'static str {
        match self.measure() {
            Measure::Latency | Measure::MaxLatency => "ms",
            Measure::Loss => "%",
        }
    }

    /// What the metric measures.
    pub fn measure(self) -> Measure {
        match self {
            VpnMetric::LinkAverageLatency | VpnMetric::PublicAverageLatency => Measure::Latency,
            VpnMetric::LinkMaxLatency | VpnMetric::PublicMaxLatency => Measure::MaxLatency,
            VpnMetric::LinkPacketLossRate | VpnMetric::PublicPacketLossRate => Measure::Loss,
        }
    }

    /// Parses a metric name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// `condition.filter`: how the windows of a period are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    Average,
    Max,
    Min,
    Sum,
    Variance,
}

impl Filter {
    /// Every filter.
    pub const ALL: [Filter; 5] = [
        Filter::Average,
        Filter::Max,
        Filter::Min,
        Filter::Sum,
        Filter::Variance,
    ];

    /// The filter's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Filter::Average => "average",
            Filter::Max => "max",
            Filter::Min => "min",
            Filter::Sum => "sum",
            Filter::Variance => "variance",
        }
    }

    /// Parses a filter name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "average" => Filter::Average,
            "max" => Filter::Max,
            "min" => Filter::Min,
            "sum" => Filter::Sum,
            "variance" => Filter::Variance,
            _ => return None,
        })
    }
}
