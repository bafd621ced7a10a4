//! `fast-seller healthcheck`: for container healthchecks, where no curl is at hand.

use super::{fail, CommandError};

/// Succeeds when `url` answers with a 2xx status within three seconds.
pub async fn run(url: &str) -> Result<String, CommandError> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(fail)?;
    let resp = client.get(url).send().await.map_err(fail)?;
    if resp.status().is_success() {
        Ok(format!("{url}: {}\n", resp.status()))
    } else {
        Err(fail(format!("{url}: {}", resp.status())))
    }
}
