//! One GET for a small JSON document: the key sets and discovery documents the guard fetches.

/// GETs `url` (http or https, the system's trusted roots) and returns a 200 body of at most
/// `limit` bytes: for key sets and discovery documents the guard fetches.
pub async fn fetch(
    url: &str,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Vec<u8>, String> {
    let client = crate::http_client::Client::for_url(url, None)?;
    let path = client.target().path.clone();
    let work = async {
        let mut r = client
            .send("GET", &path, &[("accept", "application/json")], None)
            .await
            .map_err(|e| format!("cannot reach {url}: {e}"))?;
        if r.status != 200 {
            return Err(format!("{url} answered HTTP {}", r.status));
        }
        let mut body = Vec::new();
        while let Some(chunk) = r.chunk().await.map_err(|e| format!("reading {url}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > limit {
                return Err(format!("{url} sent more than {limit} bytes"));
            }
        }
        Ok(body)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("{url} did not answer within {}s", timeout.as_secs()))?
}
