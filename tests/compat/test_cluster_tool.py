"""kafka-cluster (ClusterTool): cluster-id and list-endpoints, which use
DescribeCluster v2 (with include_fenced_brokers)."""

from __future__ import annotations

import re

from compat import kafka_tool

CLUSTER_TOOL = "org.apache.kafka.tools.ClusterTool"


def test_cluster_id_and_endpoints(broker):
    bootstrap = broker.bootstrap
    out = kafka_tool(CLUSTER_TOOL, "cluster-id", "--bootstrap-server", bootstrap).stdout
    assert re.search(r"^Cluster ID: [A-Za-z0-9_-]{22}$", out, re.M), out

    host, port = broker.host_port
    out = kafka_tool(CLUSTER_TOOL, "list-endpoints", "--bootstrap-server", bootstrap,
                     "--include-fenced-brokers").stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert rows[0][:6] == ["ID", "HOST", "PORT", "RACK", "STATE", "ENDPOINT_TYPE"], out
    assert len(rows) == 2, out
    assert rows[1][1:3] == [host, str(port)] and rows[1][4:] == ["unfenced", "broker"], out
