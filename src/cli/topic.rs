//! `klamm topic create | list | describe | alter | delete` (CreateTopics,
//! Metadata, DescribeConfigs, IncrementalAlterConfigs, CreatePartitions,
//! DeleteTopics), printed like `kafka-topics.sh` says it.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::client::{check, Client};
use super::output::{join_ids, print, print_json, OutputFormat, Table};
use super::{parse_key_value, CliError, ConnOpts, FormatOpts};
use crate::protocol::messages as m;

/// DescribeConfigs/IncrementalAlterConfigs resource type of a topic.
const RESOURCE_TOPIC: i8 = 2;
/// DescribeConfigs `config_source` of a topic-level override.
const SOURCE_DYNAMIC_TOPIC_CONFIG: i8 = 1;
const TOPIC_ALREADY_EXISTS: i16 = 36;

#[derive(Clone, Debug, Args)]
pub struct TopicArgs {
    #[command(flatten)]
    pub conn: ConnOpts,
    #[command(flatten)]
    pub format: FormatOpts,
    #[command(subcommand)]
    pub command: TopicCommand,
}

#[derive(Clone, Debug, Subcommand)]
pub enum TopicCommand {
    /// Creates a topic.
    Create {
        name: String,
        /// Number of partitions (default: the broker's num.partitions).
        #[arg(short = 'p', long)]
        partitions: Option<i32>,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(short = 'r', long = "replication-factor")]
        replication_factor: Option<i16>,
        /// A topic config, repeatable: `-c retention.ms=86400000`.
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Succeeds if the topic exists already.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// Lists topics.
    List {
        /// Includes internal topics (`__consumer_offsets`, ...).
        #[arg(short = 'i', long)]
        internal: bool,
    },
    /// Shows a topic's partitions (leader, replicas, in-sync replicas) and
    /// the configs it sets (those that are not defaults).
    Describe { name: String },
    /// Changes a topic's configs or adds partitions.
    Alter {
        name: String,
        /// Sets a config, repeatable.
        #[arg(short = 'c', long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        configs: Vec<(String, String)>,
        /// Removes a config override (back to the default), repeatable.
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
        /// Raises the number of partitions to N.
        #[arg(long)]
        partitions: Option<i32>,
    },
    /// Deletes topics.
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

pub async fn run(args: TopicArgs) -> Result<(), CliError> {
    let mut client = Client::connect(args.conn.client_config()).await?;
    let timeout_ms = args.conn.timeout_ms.min(i32::MAX as u64) as i32;
    let format = args.format.format;
    match args.command {
        TopicCommand::Create { name, partitions, replication_factor, configs, if_not_exists } => {
            create(&mut client, format, timeout_ms, name, partitions, replication_factor, configs, if_not_exists).await
        }
        TopicCommand::List { internal } => list(&mut client, format, internal).await,
        TopicCommand::Describe { name } => describe(&mut client, format, &name).await,
        TopicCommand::Alter { name, configs, delete_configs, partitions } => {
            alter(&mut client, format, timeout_ms, &name, configs, delete_configs, partitions).await
        }
        TopicCommand::Delete { names } => delete(&mut client, format, timeout_ms, names).await,
    }
}

#[allow(clippy::too_many_arguments)]
async fn create(
    client: &mut Client,
    format: OutputFormat,
    timeout_ms: i32,
    name: String,
    partitions: Option<i32>,
    replication_factor: Option<i16>,
    configs: Vec<(String, String)>,
    if_not_exists: bool,
) -> Result<(), CliError> {
    let req = m::create_topics_request::CreateTopicsRequest {
        topics: vec![m::create_topics_request::CreatableTopic {
            name: name.clone(),
            num_partitions: partitions.unwrap_or(-1),
            replication_factor: replication_factor.unwrap_or(-1),
            assignments: vec![],
            configs: configs
                .into_iter()
                .map(|(k, v)| m::create_topics_request::CreatableTopicConfig { name: k, value: Some(v) })
                .collect(),
        }],
        timeout_ms,
        validate_only: false,
    };
    let resp = client.any().call(&req).await?;
    let Some(t) = resp.topics.first() else {
        return Err(CliError::Io("CreateTopics answered no topic".into()));
    };
    let existed = if_not_exists && t.error_code == TOPIC_ALREADY_EXISTS;
    if !existed {
        check(t.error_code, t.error_message.as_deref()).map_err(|e| e.about(&format!("topic '{name}'")))?;
    }
    match format {
        OutputFormat::Json => print_json(&json!({
            "topic": name,
            "created": !existed,
            "topic_id": (!existed && !t.topic_id.is_nil()).then(|| t.topic_id.to_base64()),
            "partitions": (!existed && t.num_partitions > 0).then_some(t.num_partitions),
            "replication_factor": (!existed && t.replication_factor > 0).then_some(t.replication_factor),
        })),
        OutputFormat::Table if existed => print(&format!("Topic {name} already exists.\n")),
        OutputFormat::Table => print(&format!("Created topic {name}.\n")),
    }
    Ok(())
}

async fn list(client: &mut Client, format: OutputFormat, internal: bool) -> Result<(), CliError> {
    let md = client.metadata(None).await?;
    let mut topics: Vec<_> = md.topics.iter().filter(|t| internal || !t.is_internal).collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    match format {
        OutputFormat::Json => print_json(&Value::Array(
            topics
                .iter()
                .map(|t| {
                    json!({
                        "topic": t.name,
                        "partitions": t.partitions.len(),
                        "replication_factor": replication_factor(t),
                        "internal": t.is_internal,
                    })
                })
                .collect(),
        )),
        OutputFormat::Table => {
            let mut table = Table::new(&["NAME", "PARTITIONS", "REPLICAS"]);
            for t in topics {
                table.row(vec![
                    t.name.clone().unwrap_or_default(),
                    t.partitions.len().to_string(),
                    replication_factor(t).to_string(),
                ]);
            }
            print(&table.render());
        }
    }
    Ok(())
}

fn replication_factor(t: &m::metadata_response::MetadataResponseTopic) -> usize {
    t.partitions.first().map_or(0, |p| p.replica_nodes.len())
}

async fn describe(client: &mut Client, format: OutputFormat, name: &str) -> Result<(), CliError> {
    let md = client.metadata(Some(&[name.to_string()])).await?;
    let Some(t) = md.topics.first() else {
        return Err(CliError::Kafka { code: 3, message: None }.about(&format!("topic '{name}'")));
    };
    check(t.error_code, None).map_err(|e| e.about(&format!("topic '{name}'")))?;
    let configs = topic_overrides(client, name).await?;
    let mut partitions: Vec<_> = t.partitions.iter().collect();
    partitions.sort_by_key(|p| p.partition_index);
    match format {
        OutputFormat::Json => print_json(&json!({
            "topic": name,
            "topic_id": (!t.topic_id.is_nil()).then(|| t.topic_id.to_base64()),
            "internal": t.is_internal,
            "partitions": partitions.iter().map(|p| json!({
                "partition": p.partition_index,
                "leader": p.leader_id,
                "leader_epoch": p.leader_epoch,
                "replicas": p.replica_nodes,
                "isr": p.isr_nodes,
                "offline_replicas": p.offline_replicas,
                "error": (p.error_code != 0).then(|| super::errors::error_name(p.error_code)),
            })).collect::<Vec<_>>(),
            "configs": configs.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        })),
        OutputFormat::Table => {
            let mut head = Table::new(&["NAME", "ID", "PARTITIONS", "REPLICAS", "CONFIGS"]);
            let configs_text: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or(""))).collect();
            head.row(vec![
                name.to_string(),
                if t.topic_id.is_nil() { "-".into() } else { t.topic_id.to_base64() },
                partitions.len().to_string(),
                replication_factor(t).to_string(),
                configs_text.join(","),
            ]);
            let mut table = Table::new(&["PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR"]);
            for p in partitions {
                table.row(vec![
                    p.partition_index.to_string(),
                    p.leader_id.to_string(),
                    p.leader_epoch.to_string(),
                    join_ids(&p.replica_nodes),
                    join_ids(&p.isr_nodes),
                ]);
            }
            print(&format!("{}\n{}", head.render(), table.render()));
        }
    }
    Ok(())
}

/// The topic's own config overrides (not defaults), sorted by name.
async fn topic_overrides(client: &mut Client, name: &str) -> Result<Vec<(String, Option<String>)>, CliError> {
    let req = m::describe_configs_request::DescribeConfigsRequest {
        resources: vec![m::describe_configs_request::DescribeConfigsResource {
            resource_type: RESOURCE_TOPIC,
            resource_name: name.to_string(),
            configuration_keys: None,
        }],
        include_synonyms: false,
        include_documentation: false,
    };
    let conn = client.any();
    let version = conn.version_of::<m::describe_configs_request::DescribeConfigsRequest>()?;
    let resp = conn.call(&req).await?;
    let Some(r) = resp.results.first() else {
        return Err(CliError::Io("DescribeConfigs answered no resource".into()));
    };
    check(r.error_code, r.error_message.as_deref()).map_err(|e| e.about(&format!("topic '{name}'")))?;
    let mut out: Vec<_> = r
        .configs
        .iter()
        .filter(|c| if version >= 1 { c.config_source == SOURCE_DYNAMIC_TOPIC_CONFIG } else { !c.is_default })
        .map(|c| (c.name.clone(), if c.is_sensitive { None } else { c.value.clone() }))
        .collect();
    out.sort();
    Ok(out)
}

async fn alter(
    client: &mut Client,
    format: OutputFormat,
    timeout_ms: i32,
    name: &str,
    configs: Vec<(String, String)>,
    delete_configs: Vec<String>,
    partitions: Option<i32>,
) -> Result<(), CliError> {
    if configs.is_empty() && delete_configs.is_empty() && partitions.is_none() {
        return Err(CliError::Usage("nothing to alter: give -c KEY=VALUE, --delete-config KEY or --partitions N".into()));
    }
    let about = format!("topic '{name}'");
    let mut done = Vec::new();
    if let Some(count) = partitions {
        let req = m::create_partitions_request::CreatePartitionsRequest {
            topics: vec![m::create_partitions_request::CreatePartitionsTopic { name: name.to_string(), count, assignments: None }],
            timeout_ms,
            validate_only: false,
        };
        let resp = client.any().call(&req).await?;
        let Some(r) = resp.results.first() else {
            return Err(CliError::Io("CreatePartitions answered no topic".into()));
        };
        check(r.error_code, r.error_message.as_deref()).map_err(|e| e.about(&about))?;
        done.push(format!("partitions={count}"));
    }
    if !configs.is_empty() || !delete_configs.is_empty() {
        let mut alter: Vec<_> = configs
            .iter()
            .map(|(k, v)| m::incremental_alter_configs_request::AlterableConfig {
                name: k.clone(),
                config_operation: 0, // SET
                value: Some(v.clone()),
            })
            .collect();
        alter.extend(delete_configs.iter().map(|k| m::incremental_alter_configs_request::AlterableConfig {
            name: k.clone(),
            config_operation: 1, // DELETE
            value: None,
        }));
        let req = m::incremental_alter_configs_request::IncrementalAlterConfigsRequest {
            resources: vec![m::incremental_alter_configs_request::AlterConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: name.to_string(),
                configs: alter,
            }],
            validate_only: false,
        };
        let resp = client.any().call(&req).await?;
        let Some(r) = resp.responses.first() else {
            return Err(CliError::Io("IncrementalAlterConfigs answered no resource".into()));
        };
        check(r.error_code, r.error_message.as_deref()).map_err(|e| e.about(&about))?;
        done.extend(configs.iter().map(|(k, v)| format!("{k}={v}")));
        done.extend(delete_configs.iter().map(|k| format!("-{k}")));
    }
    match format {
        OutputFormat::Json => print_json(&json!({ "topic": name, "altered": done })),
        OutputFormat::Table => print(&format!("Altered topic {name}: {}.\n", done.join(", "))),
    }
    Ok(())
}

async fn delete(client: &mut Client, format: OutputFormat, timeout_ms: i32, names: Vec<String>) -> Result<(), CliError> {
    let req = m::delete_topics_request::DeleteTopicsRequest {
        topics: names
            .iter()
            .map(|n| m::delete_topics_request::DeleteTopicState { name: Some(n.clone()), ..Default::default() })
            .collect(),
        topic_names: names.clone(),
        timeout_ms,
    };
    let resp = client.any().call(&req).await?;
    let mut first_error = None;
    let mut results = Vec::new();
    for name in &names {
        let r = resp.responses.iter().find(|r| r.name.as_deref() == Some(name.as_str()));
        let outcome = match r {
            Some(r) => check(r.error_code, r.error_message.as_deref()),
            None => Err(CliError::Io(format!("DeleteTopics did not answer for topic '{name}'"))),
        }
        .map_err(|e| e.about(&format!("topic '{name}'")));
        if outcome.is_ok() && format == OutputFormat::Table {
            print(&format!("Deleted topic {name}.\n"));
        }
        if let (Err(e), Some(_)) = (&outcome, &first_error) {
            // The first error is the exit's; later ones are printed here.
            eprintln!("error: {e}");
        }
        results.push(json!({ "topic": name, "deleted": outcome.is_ok(), "error": outcome.as_ref().err().map(|e| e.to_string()) }));
        if let Err(e) = outcome {
            first_error.get_or_insert(e);
        }
    }
    if format == OutputFormat::Json {
        print_json(&Value::Array(results));
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
