//! The `uniform` server assignor: every partition of the subscribed topics
//! goes to one member subscribed to its topic, the counts differ by at most
//! one when subscriptions are the same, and a member keeps what it had in
//! the previous target as far as balance allows (sticky). Deterministic:
//! members in id order, partitions in (topic id, partition) order.

use std::collections::{BTreeMap, BTreeSet};

use super::state::{Assignment, TopicMeta};
use crate::protocol::Uuid;

/// The target assignment of `subscriptions` (member id -> topic names)
/// over the existing topics `metadata`, sticky to `previous`.
pub fn uniform(
    subscriptions: &BTreeMap<&str, &BTreeSet<String>>,
    metadata: &BTreeMap<String, TopicMeta>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> =
        subscriptions.keys().map(|m| (m.to_string(), Assignment::new())).collect();
    // Every partition with the members that may have it.
    let mut eligible: BTreeMap<(Uuid, i32), Vec<&str>> = BTreeMap::new();
    for (member, topics) in subscriptions {
        for name in topics.iter() {
            if let Some(t) = metadata.get(name) {
                for p in 0..t.partitions.max(0) {
                    eligible.entry((t.id, p)).or_default().push(member);
                }
            }
        }
    }
    let total = eligible.len();
    let active: Vec<&str> = subscriptions
        .iter()
        .filter(|(_, t)| t.iter().any(|n| metadata.contains_key(n)))
        .map(|(m, _)| *m)
        .collect();
    if total == 0 || active.is_empty() {
        return out;
    }
    let floor = total / active.len();
    let mut extra = total % active.len();
    let mut counts: BTreeMap<&str, usize> = active.iter().map(|m| (*m, 0)).collect();
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();

    // Sticky: members that had the most keep first, up to their quota.
    let mut by_previous: Vec<(&str, Vec<(Uuid, i32)>)> = active
        .iter()
        .map(|m| {
            let kept: Vec<(Uuid, i32)> = previous
                .get(*m)
                .into_iter()
                .flat_map(|a| a.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p))))
                .filter(|tp| eligible.get(tp).is_some_and(|e| e.contains(m)))
                .collect();
            (*m, kept)
        })
        .collect();
    by_previous.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    for (member, kept) in by_previous {
        let quota = if extra > 0 && kept.len() > floor {
            extra -= 1;
            floor + 1
        } else {
            floor
        };
        for tp in kept.into_iter().take(quota) {
            if taken.insert(tp) {
                give(&mut out, member, tp);
                *counts.entry(member).or_default() += 1;
            }
        }
    }
    // The rest to the least loaded eligible member.
    for (tp, members) in &eligible {
        if taken.contains(tp) {
            continue;
        }
        let Some(member) = members.iter().min_by(|a, b| counts[**a].cmp(&counts[**b]).then(a.cmp(b))) else {
            continue;
        };
        give(&mut out, member, *tp);
        *counts.entry(member).or_default() += 1;
    }
    out
}

fn give(out: &mut BTreeMap<String, Assignment>, member: &str, (topic, partition): (Uuid, i32)) {
    out.entry(member.to_string()).or_default().entry(topic).or_default().insert(partition);
}
