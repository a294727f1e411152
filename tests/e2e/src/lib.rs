//! End-to-end tests of CP-IS: the four release-built components (run `scripts/build-components.sh`
//! first, as `scripts/test.sh` does), driven over HTTP on 127.0.0.1 on every target
//! ([`support::targets`]): the test host `cpis-host-kit` with a fresh instance per request and
//! with Spin's instance reuse (so that state leaking between requests is caught), and the real
//! Spin CLI with its SQLite store and with Redis (when `CPIS_SPIN` or `spin` on `PATH` is found).
//! Tests that need the test host's fault injection or trap records say so and run on it alone.

/// The `n`-th valid NHS number of a deterministic sequence in the test range (999…), for test
/// data here and in the throughput example.
pub fn nhs_number(n: u32) -> String {
    cpis_shared::nhs_number::NhsNumber::test_number(n).to_string()
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
mod framing;
#[cfg(test)]
mod malformed;
#[cfg(test)]
mod outage;
#[cfg(test)]
mod worktray;
