"""KafkaTopics for any CDK Python app: Kafka topics that exist on MSK (IAM auth) before the
services that need them. ``pip install 'topic-sync[cdk]'``.

    cluster = KafkaCluster(self, "Cluster", cluster_arn=..., vpc=vpc,
                                           security_group=cluster_sg)
    topics = KafkaTopics(self, "Topics", cluster=cluster,
                         topics=load_topics("topics.yaml", stage="prod").topics)
    topics.grant_produce(task_role, "orders")
    service.node.add_dependency(topics.resource)
"""

from topic_sync.spec import ClusterType, TopicSpec
from topic_sync_cdk.cluster import KafkaCluster
from topic_sync_cdk.kafka_topics import KafkaTopics
from topic_sync_tools.spec_file import ServiceSpec, TopicsFile
from topic_sync_tools.spec_file import load as load_topics

__all__ = [
    "ClusterType",
    "KafkaCluster",
    "KafkaTopics",
    "ServiceSpec",
    "TopicSpec",
    "TopicsFile",
    "load_topics",
]
