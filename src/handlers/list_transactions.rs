//! ListTransactions (key 66): the transactional ids this coordinator
//! holds (`kafka-transactions list`, and `find-hanging`'s producer id
//! lookup), filtered as Kafka's `TransactionStateManager.listTransactionStates`:
//! by state names (an unknown name is returned in `unknown_state_filters`
//! and matches nothing), by producer ids, from v1 by duration (only
//! transactions whose start lies more than `duration_filter` ms back; a
//! negative filter is off) and from v2 by a regular expression the whole
//! transactional id must match (Kafka compiles it with RE2J; the `regex`
//! crate is the same RE2 family: linear time, no backreferences). A bad
//! pattern is INVALID_REGULAR_EXPRESSION. `Dead` ids are never listed.

use std::collections::HashSet;

use super::{ApiSpec, RequestContext};
use crate::protocol::messages::list_transactions_request::ListTransactionsRequest;
use crate::protocol::messages::list_transactions_response::{ListTransactionsResponse, TransactionState as Listed};
use crate::protocol::ErrorCode;
use crate::txn::state::TransactionMetadata;
use crate::txn::TransactionState;
use crate::types::TimestampMs;

pub const SPEC: ApiSpec = ApiSpec { api_key: 66, name: "ListTransactions", min_version: 0, max_version: 2 };

/// INVALID_REGULAR_EXPRESSION (Kafka's error 128).
const INVALID_REGULAR_EXPRESSION: i16 = 128;
/// Bounds what one pattern may make the regex compiler build.
const MAX_PATTERN_BYTES: usize = 4096;
const MAX_REGEX_SIZE_BYTES: usize = 1 << 20;

/// The filters of one request.
struct Filters {
    states: HashSet<TransactionState>,
    producer_ids: HashSet<i64>,
    duration_ms: i64,
    pattern: Option<regex::Regex>,
}

impl Filters {
    fn keep(&self, m: &TransactionMetadata, now: TimestampMs) -> bool {
        if m.state == TransactionState::Dead {
            return false;
        }
        if !self.producer_ids.is_empty() && !self.producer_ids.contains(&m.producer_id) {
            return false;
        }
        if !self.states.is_empty() && !self.states.contains(&m.state) {
            return false;
        }
        // As Kafka: `now - start <= filter` is left out (an id with no
        // open transaction has start -1, so it always passes).
        if self.duration_ms >= 0 && now.0.saturating_sub(m.txn_start_ms.0) <= self.duration_ms {
            return false;
        }
        self.pattern.as_ref().is_none_or(|p| p.is_match(&m.transactional_id))
    }
}

/// Compiles a v2 pattern for a whole-id match (Java's `Matcher.matches`).
fn compile(pattern: &str) -> Result<regex::Regex, ErrorCode> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(ErrorCode::InvalidRequest);
    }
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(MAX_REGEX_SIZE_BYTES)
        .build()
        .map_err(|_| ErrorCode::InvalidRequest)
}

pub async fn handle(ctx: &RequestContext<'_>, req: ListTransactionsRequest) -> ListTransactionsResponse {
    let mut response = ListTransactionsResponse::default();
    let mut states = HashSet::new();
    for name in req.state_filters {
        match TransactionState::from_name(&name) {
            Some(s) => {
                states.insert(s);
            }
            None => response.unknown_state_filters.push(name),
        }
    }
    let pattern = match req.transactional_id_pattern.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => match compile(p) {
            Ok(re) => Some(re),
            Err(_) => {
                response.error_code = INVALID_REGULAR_EXPRESSION;
                return response;
            }
        },
    };
    let filters = Filters {
        states,
        producer_ids: req.producer_id_filters.into_iter().collect(),
        duration_ms: req.duration_filter,
        pattern,
    };
    let broker = ctx.broker.clone();
    let listed = tokio::task::spawn_blocking(move || {
        let now = TimestampMs::now();
        broker.txns.list(&|m| filters.keep(m, now))
    })
    .await;
    match listed {
        Ok(listed) => {
            response.transaction_states = listed
                .into_iter()
                .map(|(transactional_id, producer_id, state)| Listed {
                    transactional_id,
                    producer_id,
                    transaction_state: state.name().to_string(),
                })
                .collect();
        }
        Err(_) => response.error_code = ErrorCode::UnknownServerError.code(),
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, pid: i64, state: TransactionState, start: i64) -> TransactionMetadata {
        let mut m = TransactionMetadata::new(id, pid, 60_000, TimestampMs(0));
        m.state = state;
        m.txn_start_ms = TimestampMs(start);
        m
    }

    fn none() -> Filters {
        Filters { states: HashSet::new(), producer_ids: HashSet::new(), duration_ms: -1, pattern: None }
    }

    #[test]
    fn filters_as_kafka() {
        let now = TimestampMs(10_000);
        let empty = meta("app-1", 1, TransactionState::Empty, -1);
        let ongoing = meta("app-2", 2, TransactionState::Ongoing, 9_000);
        let dead = meta("app-3", 3, TransactionState::Dead, -1);
        assert!(none().keep(&empty, now) && none().keep(&ongoing, now));
        assert!(!none().keep(&dead, now), "Dead is never listed");
        let by_state = Filters { states: [TransactionState::Ongoing].into(), ..none() };
        assert!(!by_state.keep(&empty, now) && by_state.keep(&ongoing, now));
        let by_pid = Filters { producer_ids: [1].into(), ..none() };
        assert!(by_pid.keep(&empty, now) && !by_pid.keep(&ongoing, now));
        // Running for 1000 ms: a filter of 1000 leaves it out, 999 keeps it.
        assert!(!Filters { duration_ms: 1_000, ..none() }.keep(&ongoing, now));
        assert!(Filters { duration_ms: 999, ..none() }.keep(&ongoing, now));
        assert!(Filters { duration_ms: 1_000, ..none() }.keep(&empty, now), "start -1 passes, as in Kafka");
        let by_pattern = Filters { pattern: Some(compile("app-[2-9]").unwrap()), ..none() };
        assert!(!by_pattern.keep(&empty, now) && by_pattern.keep(&ongoing, now));
        let partial = Filters { pattern: Some(compile("app").unwrap()), ..none() };
        assert!(!partial.keep(&empty, now), "the whole id must match");
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert!(compile("app-(").is_err());
        assert!(compile(&"a".repeat(MAX_PATTERN_BYTES + 1)).is_err());
        assert!(compile("(a{1000}){1000}").is_err(), "over the size limit");
        assert!(compile(".*").is_ok());
    }
}
