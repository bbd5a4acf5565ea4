//! The classic group state machine: the five states of a classic consumer
//! group, what each allows and which transitions are legal (Kafka's
//! `ClassicGroupState`).

use std::fmt;

/// The state of a classic group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members. The group lingers because it has committed offsets (or
    /// was just created) until its offsets expire. This is also the state
    /// of "simple" groups that only use Kafka to store offsets.
    ///
    /// Actions: JoinGroup from new members is handled normally (the first
    /// one starts the initial, delayed rebalance); SyncGroup, Heartbeat and
    /// LeaveGroup answer UNKNOWN_MEMBER_ID; offset commits are accepted only
    /// as simple commits (generation -1, no member id); offset fetch,
    /// offset delete and group delete are allowed.
    ///
    /// Transitions: a join from a new member => PreparingRebalance;
    /// group deleted or all offsets expired => Dead.
    Empty,
    /// A rebalance has started: the coordinator waits for every known
    /// member to (re)send JoinGroup, up to the rebalance timeout.
    ///
    /// Actions: JoinGroup requests are parked until all expected members
    /// joined; Heartbeat and SyncGroup answer REBALANCE_IN_PROGRESS;
    /// LeaveGroup removes the member; offset commits from members of the
    /// previous generation are still accepted; offset fetch is allowed.
    ///
    /// Transitions: some members joined by the deadline (or all joined) =>
    /// CompletingRebalance; every member left or timed out => Empty;
    /// group removed => Dead.
    PreparingRebalance,
    /// The join phase is over; the coordinator waits for the leader's
    /// SyncGroup carrying the assignment.
    ///
    /// Actions: Heartbeat is answered normally; SyncGroup from followers is
    /// parked until the leader's assignment arrives; offset commits answer
    /// REBALANCE_IN_PROGRESS; offset fetch is allowed.
    ///
    /// Transitions: leader's SyncGroup => Stable; a join from a new member
    /// or a member with changed metadata, a leave, a member failure or a
    /// missing SyncGroup => PreparingRebalance; group removed => Dead.
    CompletingRebalance,
    /// The assignment is distributed; members consume.
    ///
    /// Actions: Heartbeat is answered normally; SyncGroup returns the
    /// member's current assignment; JoinGroup from a follower with
    /// unchanged metadata returns the current generation; offset commits
    /// from members of the current generation are accepted; offset fetch is
    /// allowed.
    ///
    /// Transitions: member failure, a leave, a join from the leader or
    /// from a member with new metadata, or a new member => PreparingRebalance;
    /// group removed => Dead.
    Stable,
    /// The group is being removed (deleted, or expired). Final state.
    ///
    /// Actions: requests that find a Dead group answer
    /// COORDINATOR_NOT_AVAILABLE (JoinGroup, SyncGroup, Heartbeat, offset
    /// commit) so the client retries and meets a fresh group.
    ///
    /// Transitions: none (Dead -> Dead is tolerated, as in Kafka).
    Dead,
}

impl GroupState {
    /// Every state, in declaration order.
    pub const ALL: [GroupState; 5] = [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ];

    /// Kafka's name of the state, as ListGroups and DescribeGroups report it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Parses a state name case-insensitively (ListGroups' states filter).
    pub fn parse_case_insensitive(name: &str) -> Option<GroupState> {
        GroupState::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether moving from `self` to `next` is a legal transition.
    pub fn can_transition_to(self, next: GroupState) -> bool {
        use GroupState::*;
        match next {
            PreparingRebalance => matches!(self, Stable | CompletingRebalance | Empty),
            CompletingRebalance => self == PreparingRebalance,
            Stable => self == CompletingRebalance,
            Empty => self == PreparingRebalance,
            Dead => true,
        }
    }

    /// Whether a rebalance may be started from this state.
    pub fn can_rebalance(self) -> bool {
        self.can_transition_to(GroupState::PreparingRebalance)
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::GroupState::*;
    use super::*;

    #[test]
    fn legal_transitions_match_kafka() {
        let legal = [
            (Empty, PreparingRebalance),
            (Stable, PreparingRebalance),
            (CompletingRebalance, PreparingRebalance),
            (PreparingRebalance, CompletingRebalance),
            (PreparingRebalance, Empty),
            (CompletingRebalance, Stable),
        ];
        for from in GroupState::ALL {
            for to in GroupState::ALL {
                let expected = to == Dead || legal.contains(&(from, to));
                assert_eq!(from.can_transition_to(to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn rebalance_allowed_from() {
        assert!(Empty.can_rebalance());
        assert!(Stable.can_rebalance());
        assert!(CompletingRebalance.can_rebalance());
        assert!(!PreparingRebalance.can_rebalance());
        assert!(!Dead.can_rebalance());
    }

    #[test]
    fn names_round_trip() {
        for s in GroupState::ALL {
            assert_eq!(
                GroupState::parse_case_insensitive(&s.as_str().to_lowercase()),
                Some(s)
            );
            assert_eq!(GroupState::parse_case_insensitive(s.as_str()), Some(s));
        }
        assert_eq!(GroupState::parse_case_insensitive("stable"), Some(Stable));
        assert_eq!(GroupState::parse_case_insensitive("nope"), None);
    }
}
