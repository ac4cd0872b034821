//! The one issue `sync` keeps per label (`upstream-sync`): opened on the first problem, updated
//! by every later one instead of opening another, commented on and closed once a run succeeds.

use hartlm_release::github::{Client, Config, Result};

pub struct IssueTracker {
    client: Client,
}

impl IssueTracker {
    pub fn new(config: &Config) -> Result<Self> {
        Ok(IssueTracker { client: Client::new(config)? })
    }

    fn route(&self, tail: &str) -> String {
        self.client.repo_route(&format!("/issues{tail}"))
    }

    fn open_issues(&self, label: &str) -> Result<Vec<u64>> {
        let query = [("labels", label), ("state", "open"), ("per_page", "100")];
        let list = self.client.get(&format!("listing `{label}` issues"), &self.route(""), &query)?;
        // The issues endpoint also lists pull requests.
        Ok(list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i.get("pull_request").is_none())
            .filter_map(|i| i["number"].as_u64())
            .collect())
    }

    /// Updates the open issue labelled `label` (the oldest, if several), or opens one.
    /// Returns its number and whether it was created.
    pub fn report(&self, label: &str, title: &str, body: &str) -> Result<(u64, bool)> {
        if let Some(&n) = self.open_issues(label)?.iter().min() {
            let patch = serde_json::json!({ "title": title, "body": body });
            self.client.patch(&format!("updating issue #{n}"), &self.route(&format!("/{n}")), &patch)?;
            return Ok((n, false));
        }
        let new = serde_json::json!({ "title": title, "body": body, "labels": [label] });
        let created = self.client.post(&format!("opening a `{label}` issue"), &self.route(""), &new)?;
        Ok((created["number"].as_u64().unwrap_or(0), true))
    }

    /// Comments on and closes every open issue labelled `label`; returns their numbers.
    pub fn resolve(&self, label: &str, comment: &str) -> Result<Vec<u64>> {
        let open = self.open_issues(label)?;
        for &n in &open {
            let body = serde_json::json!({ "body": comment });
            self.client.post(
                &format!("commenting on issue #{n}"),
                &self.route(&format!("/{n}/comments")),
                &body,
            )?;
            let close = serde_json::json!({ "state": "closed" });
            self.client.patch(&format!("closing issue #{n}"), &self.route(&format!("/{n}")), &close)?;
        }
        Ok(open)
    }
}
