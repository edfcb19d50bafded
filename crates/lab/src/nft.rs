//! The lab's nftables table, rendered as a whole from its groups, and the
//! counters read back from `nft -j`.

use crate::LabError;
use crate::group::{GroupCounters, Groups, LossMode, TargetGroup, most_specific_first};
use std::collections::HashMap;
use std::fmt::Write;

pub(crate) const TABLE: &str = "vpnmon_lab";

/// An `nft -f` script that atomically replaces table `inet vpnmon_lab` with
/// one for `groups` (or removes it when there are none).
///
/// The input chain jumps to the chain of the most specific group containing
/// the destination; that chain counts the request, applies the group's loss
/// and accepts, so less specific groups never see it. Replacing the table
/// restarts every `numgen inc` sequence and counter, which is why the whole
/// ruleset is one transaction and is only loaded when groups change.
pub(crate) fn render(groups: &Groups) -> String {
    // Declaring the table first makes the delete succeed when it is absent.
    let mut s = format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\n");
    if groups.is_empty() {
        return s;
    }
    let ordered = most_specific_first(groups);
    let _ = writeln!(s, "table inet {TABLE} {{");
    for (group, imp) in &ordered {
        let id = group.nft_id();
        let _ = writeln!(s, "  counter req_{id} {{}}");
        let _ = writeln!(s, "  counter drop_{id} {{}}");
        let _ = writeln!(s, "  chain {id} {{");
        let _ = writeln!(s, "    counter name \"req_{id}\"");
        if let Some(loss) = imp.loss.filter(|l| l.pct() > 0) {
            let matcher = match (loss.pct(), loss.mode()) {
                (100, _) => String::new(),
                (_, LossMode::Exact) => {
                    let pos: Vec<String> = loss
                        .exact_positions()
                        .iter()
                        .map(|p| p.to_string())
                        .collect();
                    format!("numgen inc mod 100 {{ {} }} ", pos.join(", "))
                }
                (pct, LossMode::Random) => format!("numgen random mod 100 < {pct} "),
            };
            let _ = writeln!(s, "    {matcher}counter name \"drop_{id}\" drop");
        }
        let _ = writeln!(s, "    accept");
        let _ = writeln!(s, "  }}");
    }
    let _ = writeln!(s, "  chain input {{");
    let _ = writeln!(s, "    type filter hook input priority 0; policy accept;");
    for (group, _) in &ordered {
        let _ = writeln!(
            s,
            "    ip daddr {} icmp type echo-request jump {}",
            group.net(),
            group.nft_id()
        );
    }
    let _ = writeln!(s, "  }}");
    let _ = writeln!(s, "}}");
    s
}

/// Reads the per-group counters out of `nft -j list counters table inet
/// vpnmon_lab`.
pub(crate) fn parse_counters(
    json: &str,
    groups: impl IntoIterator<Item = TargetGroup>,
) -> Result<Vec<(TargetGroup, GroupCounters)>, LabError> {
    let doc: serde_json::Value =
        serde_json::from_str(json).map_err(|e| LabError::NftOutput(e.to_string()))?;
    let items = doc
        .get("nftables")
        .and_then(|v| v.as_array())
        .ok_or_else(|| LabError::NftOutput("no \"nftables\" array".into()))?;
    let mut packets: HashMap<&str, u64> = HashMap::new();
    for item in items {
        let Some(counter) = item.get("counter") else {
            continue;
        };
        if counter.get("table").and_then(|t| t.as_str()) != Some(TABLE) {
            continue;
        }
        let name = counter.get("name").and_then(|n| n.as_str());
        let value = counter.get("packets").and_then(|p| p.as_u64());
        match (name, value) {
            (Some(n), Some(p)) => {
                packets.insert(n, p);
            }
            _ => {
                return Err(LabError::NftOutput(format!(
                    "counter without name or packets: {counter}"
                )));
            }
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let id = g.nft_id();
            let get = |kind: &str| {
                packets
                    .get(format!("{kind}_{id}").as_str())
                    .copied()
                    .ok_or_else(|| LabError::NftOutput(format!("no counter {kind}_{id}")))
            };
            Ok((
                g,
                GroupCounters {
                    requests: get("req")?,
                    dropped: get("drop")?,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::{Impairments, Loss};

    fn groups(items: &[(&str, Option<Loss>)]) -> Groups {
        items
            .iter()
            .map(|(g, loss)| {
                (
                    TargetGroup::parse(g).unwrap(),
                    Impairments {
                        loss: *loss,
                        delay: None,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn no_groups_only_removes_the_table() {
        assert_eq!(
            render(&Groups::new()),
            "table inet vpnmon_lab {}\ndelete table inet vpnmon_lab\n"
        );
    }

    #[test]
    fn groups_render_most_specific_first_with_their_loss() {
        let g = groups(&[
            (
                "198.18.0.0/15",
                Some(Loss::new(20, LossMode::Random).unwrap()),
            ),
            (
                "198.18.1.0/24",
                Some(Loss::new(3, LossMode::Exact).unwrap()),
            ),
            (
                "198.18.2.0/24",
                Some(Loss::new(100, LossMode::Exact).unwrap()),
            ),
            (
                "198.18.3.0/24",
                Some(Loss::new(0, LossMode::Exact).unwrap()),
            ),
            ("198.18.4.4", None),
        ]);
        let expected = r#"table inet vpnmon_lab {}
delete table inet vpnmon_lab
table inet vpnmon_lab {
  counter req_g_198_18_4_4_32 {}
  counter drop_g_198_18_4_4_32 {}
  chain g_198_18_4_4_32 {
    counter name "req_g_198_18_4_4_32"
    accept
  }
  counter req_g_198_18_1_0_24 {}
  counter drop_g_198_18_1_0_24 {}
  chain g_198_18_1_0_24 {
    counter name "req_g_198_18_1_0_24"
    numgen inc mod 100 { 33, 66, 99 } counter name "drop_g_198_18_1_0_24" drop
    accept
  }
  counter req_g_198_18_2_0_24 {}
  counter drop_g_198_18_2_0_24 {}
  chain g_198_18_2_0_24 {
    counter name "req_g_198_18_2_0_24"
    counter name "drop_g_198_18_2_0_24" drop
    accept
  }
  counter req_g_198_18_3_0_24 {}
  counter drop_g_198_18_3_0_24 {}
  chain g_198_18_3_0_24 {
    counter name "req_g_198_18_3_0_24"
    accept
  }
  counter req_g_198_18_0_0_15 {}
  counter drop_g_198_18_0_0_15 {}
  chain g_198_18_0_0_15 {
    counter name "req_g_198_18_0_0_15"
    numgen random mod 100 < 20 counter name "drop_g_198_18_0_0_15" drop
    accept
  }
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr 198.18.4.4/32 icmp type echo-request jump g_198_18_4_4_32
    ip daddr 198.18.1.0/24 icmp type echo-request jump g_198_18_1_0_24
    ip daddr 198.18.2.0/24 icmp type echo-request jump g_198_18_2_0_24
    ip daddr 198.18.3.0/24 icmp type echo-request jump g_198_18_3_0_24
    ip daddr 198.18.0.0/15 icmp type echo-request jump g_198_18_0_0_15
  }
}
"#;
        assert_eq!(render(&g), expected);
    }

    #[test]
    fn counters_are_read_per_group() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
          {"counter": {"family": "inet", "name": "req_g_198_18_1_0_24", "table": "vpnmon_lab", "handle": 3, "packets": 10, "bytes": 840}},
          {"counter": {"family": "inet", "name": "drop_g_198_18_1_0_24", "table": "vpnmon_lab", "handle": 4, "packets": 3, "bytes": 252}},
          {"counter": {"family": "inet", "name": "req_g_198_18_1_0_24", "table": "other", "handle": 3, "packets": 99, "bytes": 1}}]}"#;
        let g = TargetGroup::parse("198.18.1.0/24").unwrap();
        assert_eq!(
            parse_counters(json, [g]).unwrap(),
            vec![(
                g,
                GroupCounters {
                    requests: 10,
                    dropped: 3
                }
            )]
        );
        let missing = TargetGroup::parse("198.18.2.0/24").unwrap();
        assert!(matches!(
            parse_counters(json, [missing]),
            Err(LabError::NftOutput(_))
        ));
        assert!(parse_counters("not json", [g]).is_err());
    }
}
