//! (stub — being implemented)

use lienthong_bus::adapter::Built;
use lienthong_bus::config::{AdapterSpec, Config, Problem};

pub fn check(spec: &AdapterSpec, config: &Config) -> Vec<Problem> {
    let _ = (spec, config);
    Vec::new()
}

pub fn build(spec: &AdapterSpec, config: &Config) -> Result<Built, Vec<Problem>> {
    let _ = (spec, config);
    Ok(Built::default())
}
