//! Aligned plain-text tables (`kubectl get` style: an upper-case header,
//! columns separated by two spaces, no borders), so that people can read
//! them and `awk` can split them.

use serde_json::Value;

/// A table being built.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(header: I) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank.
    pub fn row<I: IntoIterator<Item = S>, S: Into<String>>(&mut self, cells: I) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The table as lines, without trailing spaces.
    pub fn render(&self) -> String {
        let n = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; n];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let c = r.get(i).map(String::as_str).unwrap_or("");
                line.push_str(c);
                if i + 1 < n {
                    line.extend(std::iter::repeat_n(' ', w - c.chars().count() + 2));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table on standard output.
    pub fn print(&self) {
        print!("{}", self.render());
    }
}

/// A JSON value as a table cell: strings bare, lists comma-separated,
/// null and empty as `-`.
pub fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(cell).collect::<Vec<_>>().join(","),
        Value::Object(_) => v.to_string(),
        other => other.to_string(),
    };
    if s.is_empty() { "-".into() } else { s }
}

/// An object as `FIELD  VALUE` rows, nested objects flattened with dots
/// (`eip1.ip_address`).
pub fn vertical(obj: &Value) -> Table {
    fn walk(prefix: &str, v: &Value, t: &mut Table) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, x, t);
                }
            }
            Value::Array(a) if a.iter().any(Value::is_object) => {
                t.row([prefix.to_string(), v.to_string()]);
            }
            _ => t.row([prefix.to_string(), cell(v)]),
        }
    }
    let mut t = Table::new(["FIELD", "VALUE"]);
    walk("", obj, &mut t);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_are_aligned_and_lines_have_no_trailing_spaces() {
        let mut t = Table::new(["ID", "NAME", "STATUS"]);
        t.row(["1", "alpha-long", "ACTIVE"]);
        t.row(["22", "b", ""]);
        assert_eq!(
            t.render(),
            "ID  NAME        STATUS\n1   alpha-long  ACTIVE\n22  b\n"
        );
    }

    #[test]
    fn objects_flatten_with_dots() {
        let v = json!({"id": "x", "eip1": {"ip_address": "127.0.0.2"}, "local_subnets": ["a", "b"],
                       "tags": [], "bgp_asn": 65000, "cert": null, "rules": [{"a": 1}]});
        let r = vertical(&v).render();
        assert!(r.starts_with("FIELD "), "{r}");
        assert!(r.contains("\neip1.ip_address  127.0.0.2\n"), "{r}");
        assert!(r.contains("\nlocal_subnets    a,b\n"), "{r}");
        assert!(r.contains("\ntags             -\n"), "{r}");
        assert!(r.contains("\nbgp_asn          65000\n"), "{r}");
        assert!(r.contains("\ncert             -\n"), "{r}");
        assert!(r.contains("\nrules            [{\"a\":1}]\n"), "{r}");
    }
}
