//! Schema validation alone: the compiled `dossier.submitted` validator run over and over on one core.

use lienthong_bus::schema::SchemaRegistry;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct ValidationRun {
    pub label: String,
    /// Size of the payload as JSON text.
    pub bytes: usize,
    pub iterations: u64,
    /// Mean time of one `validate` call.
    pub per_call: Duration,
    /// Mean time of parsing the payload text into a `Value` (what ingress does just before validating).
    pub parse_per_call: Duration,
}

impl ValidationRun {
    pub fn per_second(&self) -> f64 {
        1.0 / self.per_call.as_secs_f64().max(1e-12)
    }
}

/// Loads the registry from `schemas` once.
pub fn registry(schemas: &Path) -> Result<SchemaRegistry, String> {
    SchemaRegistry::load(schemas).map_err(|ps| {
        ps.iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Validates `payload` as `dossier.submitted` v1 repeatedly for about `budget` (at least 100 times), on the
/// calling thread. Fails if the payload is not valid (the bench would be measuring the error path).
pub fn run(
    reg: &SchemaRegistry,
    label: &str,
    payload: &Value,
    budget: Duration,
) -> Result<ValidationRun, String> {
    reg.validate("dossier.submitted", 1, payload)
        .map_err(|d| format!("{label} payload is not valid: {d:?}"))?;
    let text = serde_json::to_string(payload).expect("serializes");
    let time = |f: &mut dyn FnMut()| {
        // Warm up, then run in batches until the budget is spent.
        for _ in 0..10 {
            f();
        }
        let start = Instant::now();
        let mut n = 0u64;
        while n < 100 || start.elapsed() < budget {
            for _ in 0..10 {
                f();
            }
            n += 10;
        }
        (n, start.elapsed() / n as u32)
    };
    let (iterations, per_call) = time(&mut || {
        let ok = reg.validate("dossier.submitted", 1, std::hint::black_box(payload));
        std::hint::black_box(ok.is_ok());
    });
    let (_, parse_per_call) = time(&mut || {
        let v: Value = serde_json::from_str(std::hint::black_box(&text)).expect("parses");
        std::hint::black_box(v);
    });
    Ok(ValidationRun {
        label: label.to_owned(),
        bytes: text.len(),
        iterations,
        per_call,
        parse_per_call,
    })
}
