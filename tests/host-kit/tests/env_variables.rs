//! `SPIN_VARIABLE_*` from the process environment. In its own test binary (its own
//! process) because it changes the environment.

mod common;

use common::{PROBE_APP, write_manifest};
use cpis_host_kit::{HostOptions, TestApp};

#[tokio::test]
async fn environment_sets_variables_and_overrides_win() {
    // SAFETY: the only test in this process, and no other thread of it reads the
    // environment while it is being changed (the apps start afterwards).
    unsafe {
        std::env::set_var("SPIN_VARIABLE_SECRET_TOKEN", "from-env");
        std::env::set_var("SPIN_VARIABLE_ENV_ONLY", "env-value");
    }
    let manifest = write_manifest(PROBE_APP);

    let app = TestApp::start(HostOptions::new(&manifest.path))
        .await
        .unwrap();
    let get = |path: &'static str| {
        let app = &app;
        async move { app.client.get(path).await.unwrap().text() }
    };
    assert_eq!(get("/a/var?name=env_only").await, "env-value");
    assert_eq!(get("/a/var?name=greeting").await, "hello, from-env");
    assert_eq!(get("/a/var?name=days").await, "28");

    let app = TestApp::start(HostOptions::new(&manifest.path).variable("env_only", "override"))
        .await
        .unwrap();
    assert_eq!(
        app.client.get("/a/var?name=env_only").await.unwrap().text(),
        "override"
    );

    let mut opts = HostOptions::new(&manifest.path);
    opts.read_env = false;
    let err = TestApp::start(opts)
        .await
        .err()
        .expect("secret_token is then missing");
    assert!(format!("{err:#}").contains("secret_token"));
}
