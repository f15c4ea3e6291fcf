package topicsync.localkafka;

import java.io.File;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.kafka.common.Endpoint;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.errors.InvalidRequestException;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.security.auth.KafkaPrincipal;
import org.apache.kafka.server.authorizer.AclCreateResult;
import org.apache.kafka.server.authorizer.AclDeleteResult;
import org.apache.kafka.server.authorizer.Action;
import org.apache.kafka.server.authorizer.AuthorizableRequestContext;
import org.apache.kafka.server.authorizer.AuthorizationResult;
import org.apache.kafka.server.authorizer.Authorizer;
import org.apache.kafka.server.authorizer.AuthorizerServerInfo;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Authorizes every request of an MSK IAM principal ({@code User:<identity>}) the way Amazon MSK
 * would, from the identity's IAM policies ({@link LocalMskIam}); super users (the PLAINTEXT and
 * controller listeners' {@code User:ANONYMOUS}) may do anything. ACLs do not exist here: the ACL
 * APIs list none and refuse to create any (on MSK, ACLs have no effect on IAM principals).
 *
 * <p>Configuration (broker properties): {@code topicsync.msk.iam.policies.file} (required) and
 * {@code super.users} (semicolon-separated principals). In KRaft the broker and the controller
 * each configure their own instance; the controller authorizes forwarded requests (CreateTopics,
 * CreatePartitions, IncrementalAlterConfigs, DeleteTopics) with the original client principal.
 *
 * <p>Every denial is one log line with identity, action, ARN and reason: at WARN when Kafka
 * treats the denial as final ({@link Action#logIfDenied()}), at INFO when it is only a probe that
 * Kafka follows with a narrower check (e.g. CREATE on the cluster before CREATE on each topic,
 * topics filtered out of a metadata listing).
 */
public final class MskIamAuthorizer implements Authorizer {
    static final String POLICIES_FILE_CONFIG = "topicsync.msk.iam.policies.file";
    private static final Logger LOG = LoggerFactory.getLogger(MskIamAuthorizer.class);

    private LocalMskIam iam;
    private Set<String> superUsers = Set.of();

    @Override
    public void configure(Map<String, ?> configs) {
        Object file = configs.get(POLICIES_FILE_CONFIG);
        if (file == null) {
            throw new IllegalArgumentException(POLICIES_FILE_CONFIG + " is required");
        }
        iam = LocalMskIam.load(new File(file.toString()));
        Set<String> users = new HashSet<>();
        Object su = configs.get("super.users");
        if (su != null) {
            for (String u : su.toString().split(";")) {
                if (!u.isBlank()) {
                    users.add(u.trim());
                }
            }
        }
        superUsers = Set.copyOf(users);
        for (String warning : iam.unimplementedStatements()) {
            LOG.warn("MSK IAM policy: {}", warning);
        }
    }

    @Override
    public Map<Endpoint, ? extends CompletionStage<Void>> start(AuthorizerServerInfo serverInfo) {
        Map<Endpoint, CompletableFuture<Void>> ready = new HashMap<>();
        for (Endpoint endpoint : serverInfo.endpoints()) {
            ready.put(endpoint, CompletableFuture.completedFuture(null));
        }
        return ready;
    }

    @Override
    public List<AuthorizationResult> authorize(AuthorizableRequestContext context, List<Action> actions) {
        KafkaPrincipal principal = context.principal();
        List<AuthorizationResult> results = new ArrayList<>(actions.size());
        for (Action action : actions) {
            results.add(authorizeOne(context, principal, action));
        }
        return results;
    }

    private AuthorizationResult authorizeOne(AuthorizableRequestContext context, KafkaPrincipal principal, Action action) {
        String principalText = principal.getPrincipalType() + ":" + principal.getName();
        if (superUsers.contains(principalText)) {
            return AuthorizationResult.ALLOWED;
        }
        ResourcePattern resource = action.resourcePattern();
        String kafkaAction = action.operation() + " " + resource.resourceType() + ":" + resource.name();
        if (!KafkaPrincipal.USER_TYPE.equals(principal.getPrincipalType()) || !iam.hasIdentity(principal.getName())) {
            logDenial(action.logIfDenied(), "MSK IAM denied: principal " + principalText
                + " is neither a super user nor an identity of the IAM policies file; kafka=" + kafkaAction
                + " listener=" + context.listenerName());
            return AuthorizationResult.DENIED;
        }
        LocalMskIam.Check check =
            iam.check(principal.getName(), action.operation(), resource.resourceType(), resource.name());
        if (check.allowed()) {
            return AuthorizationResult.ALLOWED;
        }
        logDenial(action.logIfDenied(), LocalMskIam.denialLine(principal.getName(), check, kafkaAction));
        return AuthorizationResult.DENIED;
    }

    private static void logDenial(boolean finalDenial, String line) {
        if (finalDenial) {
            LOG.warn(line);
        } else {
            LOG.info("{} (probe: Kafka checks further)", line);
        }
    }

    /**
     * Kafka asks this only in InitProducerId without a transactional id, after IDEMPOTENT_WRITE on
     * the cluster was denied: plain Kafka then allows idempotent produce to anyone who may WRITE
     * some topic (KIP-679). MSK documents kafka-cluster:WriteDataIdempotently for idempotent
     * produce, so this says no for IAM identities (and logs the action they lack).
     */
    @Override
    public AuthorizationResult authorizeByResourceType(AuthorizableRequestContext context, AclOperation op,
                                                       ResourceType resourceType) {
        KafkaPrincipal principal = context.principal();
        if (superUsers.contains(principal.getPrincipalType() + ":" + principal.getName())) {
            return AuthorizationResult.ALLOWED;
        }
        String identity = principal.getName();
        String kafkaAction = op + " on any " + resourceType;
        if (op == AclOperation.WRITE && resourceType == ResourceType.TOPIC && iam.hasIdentity(identity)) {
            LocalMskIam.Check check = iam.check(identity, AclOperation.IDEMPOTENT_WRITE, ResourceType.CLUSTER, "kafka-cluster");
            LOG.warn(LocalMskIam.denialLine(identity, new LocalMskIam.Check(false, check.action(), check.arn(),
                check.reason() + "; idempotent produce needs it on MSK (Kafka's any-topic WRITE fallback is not emulated)"),
                "IDEMPOTENT_WRITE CLUSTER (InitProducerId)"));
        } else {
            LOG.warn("MSK IAM denied: identity={} kafka={} reason=no per-resource-type grants in MSK IAM", identity,
                kafkaAction);
        }
        return AuthorizationResult.DENIED;
    }

    @Override
    public List<? extends CompletionStage<AclCreateResult>> createAcls(AuthorizableRequestContext context,
                                                                    List<AclBinding> bindings) {
        List<CompletableFuture<AclCreateResult>> out = new ArrayList<>();
        for (AclBinding ignored : bindings) {
            out.add(CompletableFuture.completedFuture(new AclCreateResult(new InvalidRequestException(
                "this local broker authorizes with MSK IAM policies (LOCAL_KAFKA_IAM_POLICIES), not ACLs"))));
        }
        return out;
    }

    @Override
    public List<? extends CompletionStage<AclDeleteResult>> deleteAcls(AuthorizableRequestContext context,
                                                                    List<AclBindingFilter> filters) {
        List<CompletableFuture<AclDeleteResult>> out = new ArrayList<>();
        for (AclBindingFilter ignored : filters) {
            out.add(CompletableFuture.completedFuture(new AclDeleteResult(List.of())));
        }
        return out;
    }

    @Override
    public Iterable<AclBinding> acls(AclBindingFilter filter) {
        return List.of();
    }

    @Override
    public int aclCount() {
        return 0;
    }

    @Override
    public void close() {
    }
}
