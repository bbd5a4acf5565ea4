//! `klamm group list | describe | reset-offsets | delete` (ListGroups,
//! DescribeGroups, OffsetFetch + ListOffsets for lag, OffsetCommit,
//! DeleteGroups), with `kafka-consumer-groups.sh`'s rules: offsets are
//! reset only while the group is empty, and only with `--execute` (a dry
//! run prints the plan).

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{check, Client};
use super::consume::{commit_offsets, committed_offsets, list_offsets, partition_leaders};
use super::output::{print, print_json, OutputFormat, Table};
use super::{CliError, ConnOpts, FormatOpts};
use crate::protocol::messages as m;

const GROUP_ID_NOT_FOUND: i16 = 69;
const NON_EMPTY_GROUP: i16 = 68;

#[derive(Clone, Debug, Args)]
pub struct GroupArgs {
    #[command(flatten)]
    pub conn: ConnOpts,
    #[command(flatten)]
    pub format: FormatOpts,
    #[command(subcommand)]
    pub command: GroupCommand,
}

#[derive(Clone, Debug, Subcommand)]
pub enum GroupCommand {
    /// Lists consumer groups and their states.
    List,
    /// Shows a group's state, members, and per partition its committed
    /// offset, the log end offset and the lag.
    Describe { group: String },
    /// Moves a group's committed offsets of a topic (dry run unless --execute).
    #[command(group(clap::ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_datetime"])))]
    ResetOffsets {
        group: String,
        /// The topic whose offsets to reset (all its partitions).
        #[arg(long)]
        topic: String,
        #[arg(long)]
        to_earliest: bool,
        #[arg(long)]
        to_latest: bool,
        /// An offset (clamped to the partition's earliest and latest).
        #[arg(long, value_name = "N")]
        to_offset: Option<i64>,
        /// The first offset at or after a time: `2024-01-31T12:00:00`,
        /// `...Z`, `...+02:00`, or a date (UTC unless a zone is given).
        #[arg(long, value_name = "ISO")]
        to_datetime: Option<String>,
        /// Commits the new offsets (without it, only prints the plan).
        #[arg(long)]
        execute: bool,
    },
    /// Deletes groups (they must be empty).
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

pub async fn run(args: GroupArgs) -> Result<(), CliError> {
    let mut client = Client::connect(args.conn.client_config()).await?;
    let format = args.format.format;
    match args.command {
        GroupCommand::List => list(&mut client, format).await,
        GroupCommand::Describe { group } => describe(&mut client, format, &group).await,
        GroupCommand::ResetOffsets { group, topic, to_earliest, to_latest, to_offset, to_datetime, execute } => {
            let target = if to_earliest {
                Target::Earliest
            } else if to_latest {
                Target::Latest
            } else if let Some(o) = to_offset {
                Target::Offset(o)
            } else if let Some(d) = to_datetime {
                Target::Time(parse_datetime(&d).map_err(CliError::Usage)?)
            } else {
                return Err(CliError::Usage("give --to-earliest, --to-latest, --to-offset or --to-datetime".into()));
            };
            reset(&mut client, format, &group, &topic, target, execute).await
        }
        GroupCommand::Delete { groups } => delete(&mut client, format, groups).await,
    }
}

async fn list(client: &mut Client, format: OutputFormat) -> Result<(), CliError> {
    let resp = client.any().call(&m::list_groups_request::ListGroupsRequest::default()).await?;
    check(resp.error_code, None)?;
    let mut groups = resp.groups;
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    match format {
        OutputFormat::Json => print_json(&Value::Array(
            groups
                .iter()
                .map(|g| json!({ "group": g.group_id, "state": g.group_state, "protocol_type": g.protocol_type, "type": g.group_type }))
                .collect(),
        )),
        OutputFormat::Table => {
            let mut t = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
            for g in groups {
                t.row(vec![g.group_id, or_dash(&g.group_state), or_dash(&g.protocol_type)]);
            }
            print(&t.render());
        }
    }
    Ok(())
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.to_string() }
}

/// DescribeGroups of one group.
async fn describe_group(client: &mut Client, group: &str) -> Result<m::describe_groups_response::DescribedGroup, CliError> {
    let req = m::describe_groups_request::DescribeGroupsRequest { groups: vec![group.to_string()], include_authorized_operations: false };
    let resp = client.coordinator(group).await?.call(&req).await?;
    let Some(g) = resp.groups.into_iter().next() else {
        return Err(CliError::Io("DescribeGroups answered no group".into()));
    };
    if g.error_code != GROUP_ID_NOT_FOUND {
        check(g.error_code, g.error_message.as_deref()).map_err(|e| e.about(&format!("group '{group}'")))?;
    }
    Ok(g)
}

fn not_found(group: &str) -> CliError {
    CliError::Kafka { code: GROUP_ID_NOT_FOUND, message: Some(format!("Consumer group '{group}' does not exist.")) }
}

async fn describe(client: &mut Client, format: OutputFormat, group: &str) -> Result<(), CliError> {
    let g = describe_group(client, group).await?;
    let offsets = committed_offsets(client, group, None).await?;
    let dead = g.error_code == GROUP_ID_NOT_FOUND || g.group_state == "Dead";
    if dead && offsets.is_empty() {
        return Err(not_found(group));
    }
    // Log end offsets per topic.
    let mut by_topic: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
    for (t, p, o) in &offsets {
        by_topic.entry(t.clone()).or_default().push((*p, *o));
    }
    let mut rows = Vec::new();
    for (topic, parts) in &by_topic {
        let leaders = partition_leaders(client, topic).await.unwrap_or_default();
        let wanted: Vec<(i32, i32)> = leaders.iter().filter(|(p, _)| parts.iter().any(|(q, _)| q == p)).copied().collect();
        let ends = list_offsets(client, topic, &wanted, -1).await.unwrap_or_default();
        let mut parts = parts.clone();
        parts.sort();
        for (p, committed) in parts {
            let end = ends.get(&p).copied();
            let lag = match (committed >= 0, end) {
                (true, Some(e)) => Some((e - committed).max(0)),
                _ => None,
            };
            rows.push((topic.clone(), p, (committed >= 0).then_some(committed), end, lag));
        }
    }
    let state = if dead { "Empty".to_string() } else { g.group_state.clone() };
    match format {
        OutputFormat::Json => print_json(&json!({
            "group": group,
            "state": state,
            "protocol_type": g.protocol_type,
            "protocol": g.protocol_data,
            "members": g.members.iter().map(|mb| json!({
                "member_id": mb.member_id, "group_instance_id": mb.group_instance_id,
                "client_id": mb.client_id, "host": mb.client_host,
            })).collect::<Vec<_>>(),
            "offsets": rows.iter().map(|(t, p, c, e, l)| json!({
                "topic": t, "partition": p, "committed_offset": c, "log_end_offset": e, "lag": l,
            })).collect::<Vec<_>>(),
        })),
        OutputFormat::Table => {
            let mut out = format!("GROUP: {group}\nSTATE: {state}\nMEMBERS: {}\n\n", g.members.len());
            let mut t = Table::new(&["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"]);
            let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
            for (topic, p, c, e, l) in &rows {
                t.row(vec![topic.clone(), p.to_string(), opt(*c), opt(*e), opt(*l)]);
            }
            out.push_str(&t.render());
            if !g.members.is_empty() {
                let mut t = Table::new(&["MEMBER-ID", "CLIENT-ID", "HOST"]);
                for mb in &g.members {
                    t.row(vec![mb.member_id.clone(), mb.client_id.clone(), mb.client_host.clone()]);
                }
                out.push('\n');
                out.push_str(&t.render());
            }
            print(&out);
        }
    }
    Ok(())
}

/// Where `reset-offsets` moves a group.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Time(i64),
}

async fn reset(client: &mut Client, format: OutputFormat, group: &str, topic: &str, target: Target, execute: bool) -> Result<(), CliError> {
    let g = describe_group(client, group).await?;
    let state = g.group_state.as_str();
    if g.error_code != GROUP_ID_NOT_FOUND && !matches!(state, "Empty" | "Dead" | "") {
        return Err(CliError::Kafka {
            code: NON_EMPTY_GROUP,
            message: Some(format!(
                "Assignments can only be reset if the group '{group}' is inactive, but the current state is {state}."
            )),
        });
    }
    let leaders = partition_leaders(client, topic).await?;
    let earliest = list_offsets(client, topic, &leaders, -2).await?;
    let latest = list_offsets(client, topic, &leaders, -1).await?;
    let at_time = match target {
        Target::Time(ts) => list_offsets(client, topic, &leaders, ts).await?,
        _ => Default::default(),
    };
    let mut plan = Vec::new();
    for (p, _) in &leaders {
        let lo = earliest.get(p).copied().unwrap_or(0);
        let hi = latest.get(p).copied().unwrap_or(0);
        let new = match target {
            Target::Earliest => lo,
            Target::Latest => hi,
            Target::Offset(o) => o.clamp(lo, hi.max(lo)),
            Target::Time(_) => at_time.get(p).copied().filter(|o| *o >= 0).unwrap_or(hi),
        };
        plan.push((*p, new));
    }
    if execute {
        commit_offsets(client, group, topic, &plan).await?;
    }
    match format {
        OutputFormat::Json => print_json(&json!({
            "group": group, "topic": topic, "executed": execute,
            "offsets": plan.iter().map(|(p, o)| json!({ "partition": p, "new_offset": o })).collect::<Vec<_>>(),
        })),
        OutputFormat::Table => {
            let mut t = Table::new(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]);
            for (p, o) in &plan {
                t.row(vec![group.to_string(), topic.to_string(), p.to_string(), o.to_string()]);
            }
            let mut out = t.render();
            if !execute {
                out.push_str("\n(dry run: nothing changed; add --execute to commit these offsets)\n");
            }
            print(&out);
        }
    }
    Ok(())
}

async fn delete(client: &mut Client, format: OutputFormat, groups: Vec<String>) -> Result<(), CliError> {
    let mut first_error = None;
    let mut results = Vec::new();
    for group in &groups {
        let req = m::delete_groups_request::DeleteGroupsRequest { groups_names: vec![group.clone()] };
        let outcome = match client.coordinator(group).await {
            Ok(conn) => match conn.call(&req).await {
                Ok(resp) => match resp.results.iter().find(|r| &r.group_id == group) {
                    Some(r) if r.error_code == GROUP_ID_NOT_FOUND => Err(not_found(group)),
                    Some(r) => check(r.error_code, None).map_err(|e| e.about(&format!("group '{group}'"))),
                    None => Err(CliError::Io(format!("DeleteGroups did not answer for group '{group}'"))),
                },
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if outcome.is_ok() && format == OutputFormat::Table {
            print(&format!("Deleted group {group}.\n"));
        }
        if let (Err(e), Some(_)) = (&outcome, &first_error) {
            eprintln!("error: {e}");
        }
        results.push(json!({ "group": group, "deleted": outcome.is_ok(), "error": outcome.as_ref().err().map(|e| e.to_string()) }));
        if let Err(e) = outcome {
            first_error.get_or_insert(e);
        }
    }
    if format == OutputFormat::Json {
        print_json(&Value::Array(results));
    }
    first_error.map_or(Ok(()), Err)
}

/// Parses `YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|±HH:MM]` to epoch milliseconds
/// (UTC when no zone is given).
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad = || format!("cannot parse '{s}' as a date-time like 2024-01-31T12:00:00[.000][Z|+01:00]");
    let (date, rest) = s.split_at(s.find('T').unwrap_or(s.len()));
    let rest = rest.strip_prefix('T').unwrap_or(rest);
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d.as_slice() else { return Err(bad()) };
    let num = |v: &str, lo: i64, hi: i64| v.parse::<i64>().ok().filter(|n| (lo..=hi).contains(n) && !v.is_empty());
    let (y, mo, da) = (num(y, 1970, 9999).ok_or_else(bad)?, num(mo, 1, 12).ok_or_else(bad)?, num(da, 1, 31).ok_or_else(bad)?);
    // Time and zone.
    let (time, zone_ms) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0)
    } else if let Some(at) = rest.rfind(['+', '-']) {
        let (t, z) = rest.split_at(at);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (zh, zm) = z[1..].split_once(':').unwrap_or((&z[1..], "0"));
        let zone = num(zh, 0, 23).ok_or_else(bad)? * 3_600_000 + num(zm, 0, 59).ok_or_else(bad)? * 60_000;
        (t, sign * zone)
    } else {
        (rest, 0)
    };
    let mut hms = [0i64; 3];
    let mut millis = 0;
    if !time.is_empty() {
        let (clock, frac) = time.split_once('.').unwrap_or((time, ""));
        let parts: Vec<&str> = clock.split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(bad());
        }
        for (i, p) in parts.iter().enumerate() {
            hms[i] = num(p, 0, if i == 0 { 23 } else { 59 }).ok_or_else(bad)?;
        }
        if !frac.is_empty() {
            let f: String = frac.chars().chain("000".chars()).take(3).collect();
            millis = num(&f, 0, 999).ok_or_else(bad)?;
        }
    }
    let days = days_from_civil(y, mo, da);
    Ok(days * 86_400_000 + hms[0] * 3_600_000 + hms[1] * 60_000 + hms[2] * 1000 + millis - zone_ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01"), Ok(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:01Z"), Ok(1000));
        assert_eq!(parse_datetime("2024-01-31T12:00:00"), Ok(1_706_702_400_000));
        assert_eq!(parse_datetime("2024-01-31T12:00:00.250Z"), Ok(1_706_702_400_250));
        assert_eq!(parse_datetime("2024-01-31T13:00:00+01:00"), Ok(1_706_702_400_000));
        assert_eq!(parse_datetime("2024-01-31T11:30-00:30"), Ok(1_706_702_400_000));
        assert_eq!(parse_datetime("2000-03-01T00:00:00Z"), Ok(951_868_800_000));
        assert!(parse_datetime("2024-13-01").is_err());
        assert!(parse_datetime("yesterday").is_err());
        assert!(parse_datetime("2024-01-31T25:00").is_err());
    }
}
