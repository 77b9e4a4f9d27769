//! Counters of one series keyed by one label's value, each made on first use and kept.
//!
//! Why: `metrics::counter!(name, "type" => kind.clone())` builds its key (a copy of the value, a label
//! vector) and looks it up in the recorder on every call, a few allocations each; the ingress and delivery
//! paths made several such calls per message. The values seen here are few (message types, route ids), so a
//! small map of handles costs nothing and records with neither.

use metrics::Counter;
use std::collections::HashMap;
use std::sync::Mutex;

/// Series `name` with label `label` = the value asked for, plus a fixed label (`outcome` = …) if any.
pub(crate) struct Counters {
    name: &'static str,
    label: &'static str,
    fixed: Option<(&'static str, &'static str)>,
    made: Mutex<HashMap<String, Counter>>,
}

impl Counters {
    pub fn new(name: &'static str, label: &'static str) -> Self {
        Counters {
            name,
            label,
            fixed: None,
            made: Mutex::new(HashMap::new()),
        }
    }

    /// The same series with a second, fixed label.
    pub fn with(mut self, label: &'static str, value: &'static str) -> Self {
        self.fixed = Some((label, value));
        self
    }

    /// The counter of `value`.
    pub fn get(&self, value: &str) -> Counter {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = made.get(value) {
            return c.clone();
        }
        let c = match self.fixed {
            None => metrics::counter!(self.name, self.label => value.to_owned()),
            Some((l, v)) => metrics::counter!(self.name, self.label => value.to_owned(), l => v),
        };
        made.insert(value.to_owned(), c.clone());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::Counters;

    #[test]
    fn one_handle_per_value() {
        let c = Counters::new("lienthong_test_total", "route").with("outcome", "delivered");
        c.get("a").increment(1);
        c.get("a").increment(1);
        c.get("b").increment(1);
        assert_eq!(c.made.lock().unwrap().len(), 2);
    }
}
