"""MSK IAM authorization on a real broker: identities with narrow IAM policies can do exactly what
their policies allow, get Kafka's authorization errors otherwise, and every denial is one broker
log line naming the identity, the kafka-cluster: action and the ARN.

One dedicated broker (own run dir, free ports, own policies file) for the whole module."""

from __future__ import annotations

import contextlib
import gc
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in the stubs
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from tests.support.kafka import (
    LocalKafka,
    broker_down,
    broker_up,
    create_topic,
    expect_authentication_failure,
    free_ports,
    iam_admin,
    iam_config,
    identity_env,
    plaintext_admin,
    plaintext_config,
    produce_messages,
    topic_names,
    unique_topic_name,
)

pytestmark = pytest.mark.integration

NAME_UUID = "rehearsal/abcd1234-0123-abcd-5678-1234abcd-s1"
PREFIX = "arn:aws:kafka:eu-west-1:111122223333"
CLUSTER = f"{PREFIX}:cluster/{NAME_UUID}"
TOPIC = f"{PREFIX}:topic/{NAME_UUID}"
GROUP = f"{PREFIX}:group/{NAME_UUID}"
OUT, IN, SECRET = "app.out", "app.in", "secret.data"
SERVICE_GROUP = "app-service"
TIMEOUT = 15.0
DESCRIBE_CONFIGS = "kafka-cluster:DescribeTopicDynamicConfiguration"


def _allow(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


CONNECT = _allow("kafka-cluster:Connect", CLUSTER)

POLICIES: dict[str, list[dict[str, Any]]] = {
    # What the provisioning Lambda needs, on its own topics only.
    "provisioner": [CONNECT, _allow(
        ["kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopic", "kafka-cluster:AlterTopic",
         "kafka-cluster:DescribeTopicDynamicConfiguration",
         "kafka-cluster:AlterTopicDynamicConfiguration"],
        f"{TOPIC}/app.*")],
    # A service: writes app.out, reads app.in with its consumer group.
    "service": [
        CONNECT,
        _allow(["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"], f"{TOPIC}/{OUT}"),
        _allow(["kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"], f"{TOPIC}/{IN}"),
        _allow(["kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"],
               f"{GROUP}/{SERVICE_GROUP}"),
    ],
    # The classic mistake: AlterTopicDynamicConfiguration without its required action.
    "no_describe_configs": [CONNECT, _allow(
        ["kafka-cluster:DescribeTopic", "kafka-cluster:AlterTopicDynamicConfiguration"],
        f"{TOPIC}/*")],
    "deny_wins": [
        _allow("kafka-cluster:*", "*"),
        {"Sid": "NoBlockedTopics", "Effect": "Deny", "Action": "kafka-cluster:CreateTopic",
         "Resource": f"{TOPIC}/blocked.*"},
    ],
    "not_action": [{"Effect": "Allow", "NotAction": ["kafka-cluster:CreateTopic",
                                                     "kafka-cluster:Delete*"], "Resource": "*"}],
    "not_resource": [{"Effect": "Allow", "Action": "kafka-cluster:*",
                      "NotResource": [f"{TOPIC}/secret.*"]}],
    "conditional": [CONNECT, _allow("kafka-cluster:*", "*", Sid="OnlyOverTls",
                                    Condition={"Bool": {"aws:SecureTransport": "true"}})],
    "no_connect": [_allow("kafka-cluster:DescribeTopic", "*")],
}  # fmt: skip


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    base = tmp_path_factory.mktemp("authz")
    policies = base / "policies.json"
    identities = {
        name: {"policies": [{"Version": "2012-10-17", "Statement": statements}]}
        for name, statements in POLICIES.items()
    }
    policies.write_text(json.dumps({"cluster_arn": CLUSTER, "identities": identities}))
    plaintext, sasl_ssl, controller = free_ports(3)
    ports = {"plaintext": plaintext, "sasl_ssl": sasl_ssl, "controller": controller}
    run_dir = base / "run"
    try:
        started = time.monotonic()
        broker, _ = broker_up(run_dir, ports, policies=policies)
        print(f"authz broker up in {time.monotonic() - started:.1f} s")
        admin = plaintext_admin(broker)
        for topic in (OUT, IN, SECRET):
            create_topic(admin, topic)
        yield broker
    finally:
        gc.collect()  # clients in garbage cycles would keep reconnecting to the stopped broker
        broker_down(run_dir)


class BrokerLog:
    """The part of the broker log written since it was opened."""

    def __init__(self, broker: LocalKafka) -> None:
        self.path = Path(broker.log_file)
        self.offset = self.path.stat().st_size

    def text(self) -> str:
        with self.path.open() as f:
            f.seek(self.offset)
            return f.read()

    def denial(self, identity: str, action: str, arn: str) -> str:
        """The WARN denial line for identity/action/ARN (waits briefly for the broker to write)."""
        needle = f"MSK IAM denied: identity={identity} action={action} resource={arn} "
        deadline = time.monotonic() + 5
        while True:
            for line in self.text().splitlines():
                if needle in line and " WARN " in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no denial line {needle!r} in:\n{self.text()[-3000:]}")
            time.sleep(0.1)


def _error_of(call: Callable[[], object]) -> int:
    """The Kafka error code ``call`` fails with."""
    try:
        call()
    except KafkaException as exc:
        return int(exc.args[0].code())
    raise AssertionError("succeeded, expected an authorization error")


def _create(admin: Any, name: str, partitions: int = 1) -> None:
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=TIMEOUT)


def _create_denied(admin: Any, name: str) -> int:
    return _error_of(lambda: _create(admin, name))


def _describe_configs(admin: Any, topic: str) -> dict[str, Any]:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return dict(admin.describe_configs([res])[res].result(timeout=TIMEOUT))


def _set_retention(admin: Any, topic: str, ms: str) -> None:
    entry = ConfigEntry("retention.ms", ms, incremental_operation=AlterConfigOpType.SET)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    admin.incremental_alter_configs([res])[res].result(timeout=TIMEOUT)


def _produce_one(config: dict[str, Any], topic: str) -> KafkaError | None:
    """Produce one message; the delivery error, or the producer's fatal error (None if it was
    delivered)."""
    errors: list[KafkaError | None] = []
    producer = Producer({**config, "log_level": 2, "message.timeout.ms": int(TIMEOUT * 1000)})
    deadline = time.monotonic() + TIMEOUT
    try:
        producer.produce(topic, b"v", on_delivery=lambda err, _msg: errors.append(err))
        while not errors and time.monotonic() < deadline:
            producer.poll(0.1)
    except KafkaException as exc:  # fatal (idempotent producer): raised by produce or poll
        while time.monotonic() < deadline:
            try:
                producer.poll(0.1)
            except KafkaException as fatal:
                return fatal.args[0]  # type: ignore[no-any-return]
        return exc.args[0]  # type: ignore[no-any-return]
    finally:
        # Stop it now: a producer left to the garbage collector keeps reconnecting to this
        # module's broker after it is gone.
        with contextlib.suppress(KafkaException):
            producer.purge()
        with contextlib.suppress(KafkaException):
            producer.close()
    assert errors, f"no delivery report for {topic} within {TIMEOUT} s"
    return errors[0]


def _consume(config: dict[str, Any], topic: str, group: str) -> tuple[int, KafkaError | None]:
    """Subscribe with ``group``, read until a message or an error arrives, commit.
    Returns (messages read, first error)."""
    consumer = Consumer(
        {**config, "group.id": group, "auto.offset.reset": "earliest",
         "enable.auto.commit": False, "log_level": 2}
    )  # fmt: skip
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error() is not None:
                return 0, msg.error()
            consumer.commit(message=msg, asynchronous=False)
            return 1, None
        raise AssertionError(f"nothing from {topic} with group {group} within {TIMEOUT} s")
    finally:
        consumer.close()


def test_provisioner_manages_exactly_its_topics(broker: LocalKafka) -> None:
    log = BrokerLog(broker)
    mine, other = f"app.{uuid.uuid4().hex[:8]}", unique_topic_name("other")
    create_topic(plaintext_admin(broker), SECRET + "-x")
    with iam_admin(broker, "provisioner") as admin:
        _create(admin, mine)
        assert "retention.ms" in _describe_configs(admin, mine)
        _set_retention(admin, mine, "3600000")
        admin.create_partitions([NewPartitions(mine, 3)])[mine].result(timeout=TIMEOUT)

        assert _create_denied(admin, other) == KafkaError.TOPIC_AUTHORIZATION_FAILED
        denied = _error_of(lambda: _describe_configs(admin, SECRET))
        assert denied == KafkaError.TOPIC_AUTHORIZATION_FAILED
        # Topics it may not describe are not even listed.
        assert mine in topic_names(admin)
        assert SECRET not in topic_names(admin)

    described = plaintext_admin(broker).list_topics(mine, timeout=TIMEOUT).topics[mine]
    assert len(described.partitions) == 3
    assert _describe_configs(plaintext_admin(broker), mine)["retention.ms"].value == "3600000"
    line = log.denial("provisioner", "kafka-cluster:CreateTopic", f"{TOPIC}/{other}")
    assert "no Allow statement matches" in line
    log.denial("provisioner", DESCRIBE_CONFIGS, f"{TOPIC}/{SECRET}")


def test_service_writes_and_reads_its_topics_with_its_group_only(broker: LocalKafka) -> None:
    log = BrokerLog(broker)
    produce_messages(plaintext_config(broker), IN, 3)
    with identity_env(broker, "service"):
        plain = iam_config(broker, **{"enable.idempotence": False, "acks": "all"})
        assert _produce_one(plain, OUT) is None

        denied_write = _produce_one(plain, IN)
        assert denied_write is not None
        assert denied_write.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

        # Idempotent produce needs kafka-cluster:WriteDataIdempotently, which it lacks.
        idempotent = _produce_one(iam_config(broker, **{"enable.idempotence": True}), OUT)
        assert idempotent is not None
        print("idempotent produce:", idempotent)
        assert idempotent.code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, str(idempotent)

        assert _consume(iam_config(broker), IN, SERVICE_GROUP) == (1, None)
        read, error = _consume(iam_config(broker), IN, "someone-elses-group")
        assert read == 0
        assert error is not None
        assert error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED

        with iam_admin(broker, "service") as admin:
            assert _create_denied(admin, "app.new") == KafkaError.TOPIC_AUTHORIZATION_FAILED

    log.denial("service", "kafka-cluster:WriteData", f"{TOPIC}/{IN}")
    log.denial("service", "kafka-cluster:WriteDataIdempotently", CLUSTER)
    # FindCoordinator is the first group request: Kafka DESCRIBE on the group.
    log.denial("service", "kafka-cluster:DescribeGroup", f"{GROUP}/someone-elses-group")
    log.denial("service", "kafka-cluster:CreateTopic", f"{TOPIC}/app.new")


def test_a_missing_required_action_denies_and_names_it(broker: LocalKafka) -> None:
    log = BrokerLog(broker)
    with iam_admin(broker, "no_describe_configs") as admin:
        denied = _error_of(lambda: _set_retention(admin, OUT, "7200000"))
    assert denied == KafkaError.TOPIC_AUTHORIZATION_FAILED
    line = log.denial("no_describe_configs", DESCRIBE_CONFIGS, f"{TOPIC}/{OUT}")
    assert "required by kafka-cluster:AlterTopicDynamicConfiguration" in line


def test_explicit_deny_beats_allow(broker: LocalKafka) -> None:
    log = BrokerLog(broker)
    allowed, blocked = unique_topic_name("ok"), unique_topic_name("blocked.t")
    with iam_admin(broker, "deny_wins") as admin:
        _create(admin, allowed)
        assert _create_denied(admin, blocked) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    line = log.denial("deny_wins", "kafka-cluster:CreateTopic", f"{TOPIC}/{blocked}")
    assert "explicit Deny" in line
    assert "Sid NoBlockedTopics" in line


def test_not_action_and_not_resource(broker: LocalKafka) -> None:
    log = BrokerLog(broker)
    with iam_admin(broker, "not_action") as admin:
        assert OUT in topic_names(admin)  # DescribeTopic is not excluded
        name = unique_topic_name("na")
        assert _create_denied(admin, name) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    log.denial("not_action", "kafka-cluster:CreateTopic", f"{TOPIC}/{name}")

    with iam_admin(broker, "not_resource") as admin:
        assert "retention.ms" in _describe_configs(admin, OUT)
        denied = _error_of(lambda: _describe_configs(admin, SECRET))
        assert denied == KafkaError.TOPIC_AUTHORIZATION_FAILED
    log.denial("not_resource", DESCRIBE_CONFIGS, f"{TOPIC}/{SECRET}")


def test_an_allow_with_a_condition_never_allows(broker: LocalKafka) -> None:
    log = BrokerLog(broker)
    name = unique_topic_name("cond")
    with iam_admin(broker, "conditional") as admin:
        assert _create_denied(admin, name) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    line = log.denial("conditional", "kafka-cluster:CreateTopic", f"{TOPIC}/{name}")
    assert "Sid OnlyOverTls" in line
    assert "Condition [Bool] is not implemented" in line
    # ... and the broker said so when it loaded the policies.
    head = Path(broker.log_file).read_text()
    assert "OnlyOverTls): Condition [Bool] is not implemented" in head
    assert "this Allow never allows" in head


def test_an_identity_without_connect_cannot_authenticate(broker: LocalKafka) -> None:
    log = BrokerLog(broker)
    with identity_env(broker, "no_connect"):
        error = expect_authentication_failure(iam_config(broker), timeout=TIMEOUT)
    assert error.code() == KafkaError._AUTHENTICATION
    assert "may not kafka-cluster:Connect" in log.text()
    log.denial("no_connect", "kafka-cluster:Connect", CLUSTER)


def test_acl_apis_list_nothing_and_create_nothing(broker: LocalKafka) -> None:
    admin = plaintext_admin(broker)
    any_acl = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None,  # type: ignore[arg-type]
        AclOperation.ANY, AclPermissionType.ANY,
    )  # fmt: skip
    assert admin.describe_acls(any_acl).result(timeout=TIMEOUT) == []
    binding = AclBinding(
        ResourceType.TOPIC, OUT, ResourcePatternType.LITERAL, "User:service", "*",
        AclOperation.ALL, AclPermissionType.ALLOW,
    )  # fmt: skip
    with pytest.raises(KafkaException) as excinfo:
        admin.create_acls([binding])[binding].result(timeout=TIMEOUT)
    assert "not ACLs" in str(excinfo.value)
