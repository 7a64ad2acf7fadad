//! The JSON-lines records every driver prints and `bench/run.py` merges.
//!
//! One record per line: `{"bench":B,"impl":I,"baseline":B0,"unit":U,"params":{...},"runs":[...]}`.
//! Records with the same bench, impl, params and `x` are merged by concatenating runs.

use serde_json::{json, Map, Value};
use std::io::Write;
use std::time::Duration;

/// One measurement series.
pub struct Record {
    fields: Map<String, Value>,
}

impl Record {
    /// A record of `bench` for `imp`, in `unit`.
    pub fn new(bench: &str, imp: &str, unit: &str) -> Record {
        let mut fields = Map::new();
        fields.insert("bench".into(), json!(bench));
        fields.insert("impl".into(), json!(imp));
        fields.insert("unit".into(), json!(unit));
        Record { fields }
    }

    /// The impl this one is compared with (measured in the same run).
    pub fn baseline(mut self, imp: &str) -> Record {
        self.fields.insert("baseline".into(), json!(imp));
        self
    }

    /// Workload parameters (part of the merge key).
    pub fn params(mut self, params: Value) -> Record {
        self.fields.insert("params".into(), params);
        self
    }

    /// The x coordinate of a curve point (part of the merge key).
    pub fn x(mut self, x: u64) -> Record {
        self.fields.insert("x".into(), json!(x));
        self
    }

    /// Any other field.
    pub fn field(mut self, name: &str, value: Value) -> Record {
        self.fields.insert(name.into(), value);
        self
    }

    /// Prints the record with its runs as one line on stdout.
    pub fn emit(mut self, runs: &[f64]) {
        self.fields.insert("runs".into(), json!(runs));
        let line = Value::Object(self.fields).to_string();
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}").expect("stdout is writable");
        stdout.flush().expect("stdout is writable");
    }
}

/// Calls per second for `calls` calls in `elapsed`.
pub fn rate(calls: usize, elapsed: Duration) -> f64 {
    calls as f64 / elapsed.as_secs_f64()
}

/// Nanoseconds per call.
pub fn ns_per(calls: usize, elapsed: Duration) -> f64 {
    elapsed.as_nanos() as f64 / calls as f64
}
