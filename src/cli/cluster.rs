//! `klamm cluster info`: brokers, controller, cluster id (Metadata) and
//! the API versions the bootstrap broker supports (ApiVersions).

use clap::{Args, Subcommand};
use serde_json::json;

use super::client::Client;
use super::output::{print, print_json, OutputFormat, Table};
use super::{CliError, ConnOpts, FormatOpts};
use crate::protocol::request_schema;

#[derive(Clone, Debug, Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub conn: ConnOpts,
    #[command(flatten)]
    pub format: FormatOpts,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Clone, Debug, Subcommand)]
pub enum ClusterCommand {
    /// Brokers (id, host, port, rack), controller id, cluster id, and the
    /// API versions the broker supports.
    Info,
}

pub async fn run(args: ClusterArgs) -> Result<(), CliError> {
    let ClusterCommand::Info = args.command;
    let mut client = Client::connect(args.conn.client_config()).await?;
    let md = client.metadata(Some(&[])).await?;
    let versions = client.any().broker_versions();
    let mut brokers: Vec<_> = md.brokers.iter().collect();
    brokers.sort_by_key(|b| b.node_id);
    let api_name = |key: i16| request_schema(key).map_or_else(|| format!("Api{key}"), |s| s.name.to_string());
    match args.format.format {
        OutputFormat::Json => print_json(&json!({
            "cluster_id": md.cluster_id,
            "controller_id": md.controller_id,
            "brokers": brokers.iter().map(|b| json!({
                "id": b.node_id, "host": b.host, "port": b.port, "rack": b.rack,
            })).collect::<Vec<_>>(),
            "api_versions": versions.iter().map(|(k, lo, hi)| json!({
                "api_key": k, "name": api_name(*k), "min_version": lo, "max_version": hi,
            })).collect::<Vec<_>>(),
        })),
        OutputFormat::Table => {
            let mut out = format!(
                "CLUSTER ID: {}\nCONTROLLER: {}\n\n",
                md.cluster_id.as_deref().unwrap_or("-"),
                md.controller_id
            );
            let mut t = Table::new(&["ID", "HOST", "PORT", "RACK"]);
            for b in brokers {
                let marker = if b.node_id == md.controller_id { "*" } else { "" };
                t.row(vec![
                    format!("{}{marker}", b.node_id),
                    b.host.clone(),
                    b.port.to_string(),
                    b.rack.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
            out.push_str(&t.render());
            out.push('\n');
            let mut t = Table::new(&["API", "KEY", "MIN", "MAX"]);
            for (k, lo, hi) in versions {
                t.row(vec![api_name(k), k.to_string(), lo.to_string(), hi.to_string()]);
            }
            out.push_str(&t.render());
            print(&out);
        }
    }
    Ok(())
}
