//! Which server should run each task: the tasks, in the order they were created, dealt round
//! the live servers in the order of their names, so every server that sees the same servers
//! and tasks computes the same shares, and the shares differ by one task at most.

use std::collections::BTreeMap;

/// The server each of `tasks` goes to, dealt in order round `servers` (sorted here).
pub fn assign<'a>(tasks: &'a [String], servers: &[String]) -> BTreeMap<&'a str, String> {
    let mut servers: Vec<&String> = servers.iter().collect();
    servers.sort();
    servers.dedup();
    if servers.is_empty() {
        return BTreeMap::new();
    }
    tasks
        .iter()
        .enumerate()
        .map(|(i, task)| (task.as_str(), servers[i % servers.len()].clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn tasks_are_dealt_in_order_round_the_servers_sorted() {
        let tasks = names(&["q1", "q2", "q3", "q4", "q5"]);
        let shares = assign(&tasks, &names(&["http://b:1", "http://a:1"]));
        assert_eq!(
            shares.into_iter().collect::<Vec<_>>(),
            [("q1", "http://a:1"), ("q2", "http://b:1"), ("q3", "http://a:1"), ("q4", "http://b:1"), ("q5", "http://a:1")]
                .map(|(t, s)| (t, s.to_string()))
        );
    }

    #[test]
    fn one_server_takes_everything_and_none_takes_nothing() {
        let tasks = names(&["q1", "q2"]);
        assert!(assign(&tasks, &names(&["s", "s"])).values().all(|s| s == "s"));
        assert!(assign(&tasks, &[]).is_empty());
    }
}
