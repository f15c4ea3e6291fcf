package topicsync.localkafka;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.ResourceType;

/**
 * The local stand-in for MSK IAM authorization: the cluster ARN and each identity's IAM policies
 * (the file named by LOCAL_KAFKA_IAM_POLICIES), and the mapping of a Kafka operation on a
 * resource to the {@code kafka-cluster:} action and resource ARN MSK checks.
 *
 * <p>The mapping follows the Amazon MSK Developer Guide, "Semantics of IAM authorization policy
 * actions and resources" (kafka-actions.html): each action is "equivalent to Apache Kafka's
 * OPERATION RESOURCE ACL", and an action is only granted together with its "Required actions".
 * Required actions on the same resource type are checked on the same resource; the cross-type
 * ones (ReadData needs AlterGroup, WriteDataIdempotently and AlterTransactionalId need WriteData)
 * are checked by Kafka itself on the group or topic the same client uses (JoinGroup/OffsetCommit,
 * Produce). {@code kafka-cluster:Connect} is checked when the connection authenticates.
 */
final class LocalMskIam {
    static final String ACTION_PREFIX = "kafka-cluster:";
    static final String CONNECT = ACTION_PREFIX + "Connect";
    private static final Pattern CLUSTER_ARN =
        Pattern.compile("arn:(aws[a-z-]*):kafka:([a-z0-9-]+):(\\d{12}):cluster/([A-Za-z0-9-]+)/([A-Za-z0-9-]+)");
    private static final Pattern IDENTITY_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.@+=,-]{0,63}");

    /** A {@code kafka-cluster:} action and the actions the documentation requires with it on the same resource. */
    record Mapping(String action, List<String> required) {
        Mapping(String action, String... required) {
            this(ACTION_PREFIX + action, prefixed(required));
        }

        private static List<String> prefixed(String[] names) {
            List<String> out = new ArrayList<>();
            for (String n : names) {
                out.add(ACTION_PREFIX + n);
            }
            return List.copyOf(out);
        }
    }

    /** Kafka operation on a resource type -> MSK action (absent: no MSK action; always denied). */
    static final Map<ResourceType, Map<AclOperation, Mapping>> TABLE = new EnumMap<>(ResourceType.class);

    static {
        Map<AclOperation, Mapping> cluster = new EnumMap<>(AclOperation.class);
        cluster.put(AclOperation.DESCRIBE, new Mapping("DescribeCluster"));
        cluster.put(AclOperation.ALTER, new Mapping("AlterCluster", "DescribeCluster"));
        cluster.put(AclOperation.DESCRIBE_CONFIGS, new Mapping("DescribeClusterDynamicConfiguration"));
        cluster.put(AclOperation.ALTER_CONFIGS,
            new Mapping("AlterClusterDynamicConfiguration", "DescribeClusterDynamicConfiguration"));
        cluster.put(AclOperation.IDEMPOTENT_WRITE, new Mapping("WriteDataIdempotently"));
        TABLE.put(ResourceType.CLUSTER, cluster);

        Map<AclOperation, Mapping> topic = new EnumMap<>(AclOperation.class);
        topic.put(AclOperation.CREATE, new Mapping("CreateTopic"));
        topic.put(AclOperation.DESCRIBE, new Mapping("DescribeTopic"));
        topic.put(AclOperation.ALTER, new Mapping("AlterTopic", "DescribeTopic"));
        topic.put(AclOperation.DELETE, new Mapping("DeleteTopic", "DescribeTopic"));
        topic.put(AclOperation.DESCRIBE_CONFIGS, new Mapping("DescribeTopicDynamicConfiguration"));
        topic.put(AclOperation.ALTER_CONFIGS,
            new Mapping("AlterTopicDynamicConfiguration", "DescribeTopicDynamicConfiguration"));
        topic.put(AclOperation.READ, new Mapping("ReadData", "DescribeTopic"));
        topic.put(AclOperation.WRITE, new Mapping("WriteData", "DescribeTopic"));
        TABLE.put(ResourceType.TOPIC, topic);

        Map<AclOperation, Mapping> group = new EnumMap<>(AclOperation.class);
        group.put(AclOperation.DESCRIBE, new Mapping("DescribeGroup"));
        group.put(AclOperation.READ, new Mapping("AlterGroup", "DescribeGroup"));
        group.put(AclOperation.DELETE, new Mapping("DeleteGroup", "DescribeGroup"));
        TABLE.put(ResourceType.GROUP, group);

        Map<AclOperation, Mapping> transactionalId = new EnumMap<>(AclOperation.class);
        transactionalId.put(AclOperation.DESCRIBE, new Mapping("DescribeTransactionalId"));
        transactionalId.put(AclOperation.WRITE, new Mapping("AlterTransactionalId", "DescribeTransactionalId"));
        TABLE.put(ResourceType.TRANSACTIONAL_ID, transactionalId);
    }

    /** The outcome of one authorization: the action and ARN that decided it, and why. */
    record Check(boolean allowed, String action, String arn, String reason) {
    }

    final String clusterArn;
    final String region;
    private final String arnPrefix;
    private final String clusterPath;
    private final Map<String, List<IamPolicy.Statement>> identities;

    private LocalMskIam(String clusterArn, String region, String arnPrefix, String clusterPath,
                        Map<String, List<IamPolicy.Statement>> identities) {
        this.clusterArn = clusterArn;
        this.region = region;
        this.arnPrefix = arnPrefix;
        this.clusterPath = clusterPath;
        this.identities = identities;
    }

    static LocalMskIam load(File file) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read IAM policies file " + file + ": " + e.getMessage(), e);
        }
        return parse(root, file.toString());
    }

    static LocalMskIam parse(JsonNode root, String where) {
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException(where + ": must be a JSON object with cluster_arn and identities");
        }
        String clusterArn = root.path("cluster_arn").asText("");
        Matcher m = CLUSTER_ARN.matcher(clusterArn);
        if (!m.matches()) {
            throw new IllegalArgumentException(where + ": cluster_arn \"" + clusterArn
                + "\" is not arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID");
        }
        String arnPrefix = "arn:" + m.group(1) + ":kafka:" + m.group(2) + ":" + m.group(3) + ":";
        String clusterPath = m.group(4) + "/" + m.group(5);
        JsonNode ids = root.get("identities");
        if (ids == null || !ids.isObject() || ids.isEmpty()) {
            throw new IllegalArgumentException(where + ": identities must be a non-empty object");
        }
        Map<String, List<IamPolicy.Statement>> identities = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : ids.properties()) {
            String name = e.getKey();
            if (!IDENTITY_NAME.matcher(name).matches() || "ANONYMOUS".equals(name)) {
                throw new IllegalArgumentException(where + ": identity name \"" + name
                    + "\" must be 1-64 of A-Z a-z 0-9 _.@+=,- (and not ANONYMOUS, the super user)");
            }
            JsonNode policies = e.getValue().get("policies");
            if (policies == null || !policies.isArray()) {
                throw new IllegalArgumentException(where + ": identity " + name + " needs \"policies\": [...]");
            }
            List<IamPolicy.Statement> statements = new ArrayList<>();
            for (int i = 0; i < policies.size(); i++) {
                statements.addAll(IamPolicy.parse("identity " + name + " policy " + (i + 1), policies.get(i)));
            }
            identities.put(name, List.copyOf(statements));
        }
        return new LocalMskIam(clusterArn, m.group(2), arnPrefix, clusterPath, Map.copyOf(identities));
    }

    boolean hasIdentity(String name) {
        return identities.containsKey(name);
    }

    Iterable<String> identityNames() {
        return identities.keySet();
    }

    /** Every documented kafka-cluster: action (kafka-actions.html). */
    static final List<String> ALL_ACTIONS = List.of(CONNECT,
        ACTION_PREFIX + "DescribeCluster", ACTION_PREFIX + "AlterCluster",
        ACTION_PREFIX + "DescribeClusterDynamicConfiguration", ACTION_PREFIX + "AlterClusterDynamicConfiguration",
        ACTION_PREFIX + "WriteDataIdempotently", ACTION_PREFIX + "CreateTopic", ACTION_PREFIX + "DescribeTopic",
        ACTION_PREFIX + "AlterTopic", ACTION_PREFIX + "DeleteTopic",
        ACTION_PREFIX + "DescribeTopicDynamicConfiguration", ACTION_PREFIX + "AlterTopicDynamicConfiguration",
        ACTION_PREFIX + "ReadData", ACTION_PREFIX + "WriteData", ACTION_PREFIX + "DescribeGroup",
        ACTION_PREFIX + "AlterGroup", ACTION_PREFIX + "DeleteGroup", ACTION_PREFIX + "DescribeTransactionalId",
        ACTION_PREFIX + "AlterTransactionalId");

    /** Statements the emulator cannot evaluate fully and that could apply to a kafka-cluster:
     * action (a Condition on, say, logs:PutLogEvents is none of the broker's business), for a
     * warning at start-up. */
    List<String> unimplementedStatements() {
        List<String> out = new ArrayList<>();
        identities.forEach((name, statements) -> {
            for (IamPolicy.Statement s : statements) {
                if (s.unimplemented() != null && ALL_ACTIONS.stream().anyMatch(s::matchesAction)) {
                    out.add(s.label() + ": " + s.unimplemented() + (s.effect() == IamPolicy.Effect.ALLOW
                        ? "; this Allow never allows" : "; this Deny always applies"));
                }
            }
        });
        return out;
    }

    /** The ARN MSK authorizes a Kafka resource against. */
    String arn(ResourceType type, String name) {
        return switch (type) {
            case CLUSTER -> clusterArn;
            case TOPIC -> arnPrefix + "topic/" + clusterPath + "/" + name;
            case GROUP -> arnPrefix + "group/" + clusterPath + "/" + name;
            case TRANSACTIONAL_ID -> arnPrefix + "transactional-id/" + clusterPath + "/" + name;
            default -> null;
        };
    }

    /** Whether {@code identity} may perform the IAM {@code action} on {@code arn}. */
    Check checkAction(String identity, String action, String arn) {
        List<IamPolicy.Statement> statements = identities.get(identity);
        if (statements == null) {
            return new Check(false, action, arn, "unknown identity " + identity);
        }
        IamPolicy.Decision d = IamPolicy.evaluate(statements, action, arn);
        return new Check(d.allowed(), action, arn, d.reason());
    }

    /** Whether {@code identity} may perform Kafka {@code op} on the resource, as MSK would decide. */
    Check check(String identity, AclOperation op, ResourceType type, String name) {
        Map<AclOperation, Mapping> byOp = TABLE.get(type);
        Mapping mapping = byOp == null ? null : byOp.get(op);
        String arn = arn(type, name);
        if (mapping == null) {
            String why = "MSK IAM has no kafka-cluster action for Kafka " + op + " on " + type;
            if (type == ResourceType.CLUSTER && (op == AclOperation.CREATE || op == AclOperation.DELETE)) {
                why += " (MSK authorizes " + (op == AclOperation.CREATE ? "CreateTopic" : "DeleteTopic")
                    + " per topic ARN, which Kafka checks next)";
            }
            return new Check(false, "(none)", arn == null ? type + ":" + name : arn, why);
        }
        Check main = checkAction(identity, mapping.action(), arn);
        if (!main.allowed()) {
            return main;
        }
        for (String required : mapping.required()) {
            Check r = checkAction(identity, required, arn);
            if (!r.allowed()) {
                return new Check(false, required, arn,
                    "required by " + mapping.action() + " (MSK's Required actions): " + r.reason());
            }
        }
        return main;
    }

    /** The one-line log entry for a denial. */
    static String denialLine(String identity, Check check, String kafkaAction) {
        return "MSK IAM denied: identity=" + identity + " action=" + check.action() + " resource=" + check.arn()
            + " kafka=" + kafkaAction + " reason=" + check.reason();
    }
}
