//! End-to-end tests of CP-IS: the four release-built components (run `scripts/build-components.sh`
//! first, as `scripts/test.sh` does), driven over HTTP on 127.0.0.1 on every target
//! ([`support::targets`]): the test host `cpis-host-kit` with a fresh instance per request and
//! with Spin's instance reuse (so that state leaking between requests is caught), and the real
//! Spin CLI with its SQLite store and with Redis (when `CPIS_SPIN` or `spin` on `PATH` is found).
//! Tests that need the test host's fault injection or trap records say so and run on it alone.

/// The `n`-th valid NHS number of a deterministic sequence in the test range (999…), for test
/// data here and in the throughput example.
pub fn nhs_number(n: u32) -> String {
    (0..)
        .map(|k| format!("999{:06}", n * 11 + k))
        .find_map(|nine| {
            (0..10)
                .map(|d| format!("{nine}{d}"))
                .find(|c| cpis_shared::nhs_number::NhsNumber::parse(c).is_ok())
        })
        .expect("every run of eleven nine-digit prefixes has a valid completion")
}

#[cfg(test)]
mod restart;
#[cfg(test)]
mod stores;
#[cfg(test)]
mod support;

#[cfg(test)]
mod bad_input;
#[cfg(test)]
mod components;
#[cfg(test)]
mod concurrency;
#[cfg(test)]
mod faults;
#[cfg(test)]
mod fhir;
#[cfg(test)]
mod flow;
#[cfg(test)]
mod malformed;
#[cfg(test)]
mod outage;
