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

/// The `range` server assignor: each topic's partitions in contiguous
/// ranges over the members subscribed to it (in member id order), the
/// first `partitions % members` getting one more, so that members with
/// the same subscriptions get the same partition numbers of co-partitioned
/// topics. Not sticky.
pub fn range(
    subscriptions: &BTreeMap<&str, &BTreeSet<String>>,
    metadata: &BTreeMap<String, TopicMeta>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> =
        subscriptions.keys().map(|m| (m.to_string(), Assignment::new())).collect();
    for (name, topic) in metadata {
        let members: Vec<&str> =
            subscriptions.iter().filter(|(_, t)| t.contains(name)).map(|(m, _)| *m).collect();
        if members.is_empty() || topic.partitions <= 0 {
            continue;
        }
        let n = topic.partitions as usize;
        let (each, extra) = (n / members.len(), n % members.len());
        let mut next = 0usize;
        for (i, member) in members.iter().enumerate() {
            let count = each + usize::from(i < extra);
            for p in next..next + count {
                give(&mut out, member, (topic.id, p as i32));
            }
            next += count;
        }
    }
    out
}

/// A server assignor klamm serves (`group.consumer.assignors`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Assignor {
    Uniform,
    Range,
}

impl Assignor {
    pub const ALL: [Assignor; 2] = [Assignor::Uniform, Assignor::Range];

    pub fn name(self) -> &'static str {
        match self {
            Assignor::Uniform => "uniform",
            Assignor::Range => "range",
        }
    }

    /// By name or by Kafka's class name, as `group.consumer.assignors` takes them.
    pub fn from_name(name: &str) -> Option<Assignor> {
        match name.trim() {
            "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => Some(Assignor::Uniform),
            "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => Some(Assignor::Range),
            _ => None,
        }
    }
}

/// The enabled assignors; the first is used when no member asks for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Assignors {
    enabled: [bool; 2],
    default: Assignor,
}

impl Default for Assignors {
    fn default() -> Assignors {
        Assignors { enabled: [true, true], default: Assignor::Uniform }
    }
}

impl Assignors {
    /// From the configured list (unknown names are skipped); None if empty.
    pub fn new(list: &[Assignor]) -> Option<Assignors> {
        let default = *list.first()?;
        let mut enabled = [false; 2];
        for a in list {
            enabled[*a as usize] = true;
        }
        Some(Assignors { enabled, default })
    }

    pub fn default_assignor(&self) -> Assignor {
        self.default
    }

    /// The enabled assignor of that name.
    pub fn get(&self, name: &str) -> Option<Assignor> {
        Assignor::from_name(name).filter(|a| self.enabled[*a as usize])
    }

    /// The group's assignor: the one most members ask for (ties to the
    /// first in `ALL` order), else the default.
    pub fn choose<'a>(&self, asked: impl Iterator<Item = Option<&'a str>>) -> Assignor {
        let mut counts = [0usize; 2];
        for a in asked.flatten().filter_map(|n| self.get(n)) {
            counts[a as usize] += 1;
        }
        match Assignor::ALL.iter().filter(|a| counts[**a as usize] > 0).max_by(|a, b| counts[**a as usize].cmp(&counts[**b as usize]).then(b.cmp(a))) {
            Some(a) => *a,
            None => self.default,
        }
    }
}
