package topicsync.localkafka;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.Base64;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.resource.ResourceType;

/**
 * Command-line side of the local MSK IAM emulation, used by scripts/local-kafka and tests.
 *
 * <pre>
 *   issue POLICIES CREDENTIALS   validate the policies file; write test credentials for each of its
 *                                identities (kept for names already in CREDENTIALS); print the region
 *   check POLICIES               JSON lines on stdin, one decision per line on stdout:
 *                                {"identity", "action", "resource"} (IAM evaluation only) or
 *                                {"identity", "operation", "resource_type", "name"} (as the authorizer)
 *   validate POLICIES...         one line per file: "ok" or "invalid: why"; exit 1 if any is invalid
 * </pre>
 */
public final class LocalIamTool {
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    private LocalIamTool() {
    }

    public static void main(String[] args) throws IOException {
        try {
            if (args.length == 3 && "issue".equals(args[0])) {
                issue(new File(args[1]), Path.of(args[2]), System.out);
            } else if (args.length == 2 && "check".equals(args[0])) {
                check(LocalMskIam.load(new File(args[1])));
            } else if (args.length >= 2 && "validate".equals(args[0])) {
                boolean allValid = true;
                for (int i = 1; i < args.length; i++) {
                    try {
                        LocalMskIam.load(new File(args[i]));
                        System.out.println("ok");
                    } catch (IllegalArgumentException e) {
                        allValid = false;
                        System.out.println("invalid: " + e.getMessage().replace('\n', ' '));
                    }
                }
                System.exit(allValid ? 0 : 1);
            } else {
                System.err.println("usage: LocalIamTool issue POLICIES CREDENTIALS | check POLICIES | validate POLICIES...");
                System.exit(2);
            }
        } catch (IllegalArgumentException e) {
            System.err.println("invalid IAM policies: " + e.getMessage());
            System.exit(1);
        }
    }

    static void issue(File policiesFile, Path credentials, PrintStream out) throws IOException {
        LocalMskIam iam = LocalMskIam.load(policiesFile);
        ObjectMapper mapper = new ObjectMapper();
        JsonNode previous = Files.exists(credentials) ? mapper.readTree(credentials.toFile()) : null;
        ObjectNode root = mapper.createObjectNode();
        root.put("comment", "TEST-ONLY credentials for the local broker, one per identity of the IAM policies file"
            + " (temporary keys: a token must carry the session token issued with its key).");
        root.put("region", iam.region);
        root.put("cluster_arn", iam.clusterArn);
        ObjectNode identities = root.putObject("identities");
        for (String name : iam.identityNames()) {
            JsonNode old = previous == null ? null : previous.path("identities").get(name);
            if (old != null && old.hasNonNull("access_key_id") && old.hasNonNull("secret_access_key")
                    && old.hasNonNull("session_token") && iam.region.equals(previous.path("region").asText())) {
                identities.set(name, old);  // a restart keeps the clients' credentials valid
                continue;
            }
            ObjectNode id = identities.putObject(name);
            id.put("access_key_id", "ASIA" + randomKeyChars(16));  // ASIA: AWS's prefix for temporary keys
            id.put("secret_access_key", randomBase64(30));
            id.put("session_token", randomBase64(120));
        }
        Path tmp = credentials.resolveSibling(credentials.getFileName() + ".tmp");
        Files.deleteIfExists(tmp);
        Files.createFile(tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        mapper.writerWithDefaultPrettyPrinter().writeValue(tmp.toFile(), root);
        Files.move(tmp, credentials, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        for (String warning : iam.unimplementedStatements()) {
            System.err.println("local-kafka: warning: " + warning);
        }
        out.println(iam.region);
    }

    private static void check(LocalMskIam iam) throws IOException {
        ObjectMapper mapper = new ObjectMapper();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            JsonNode q = mapper.readTree(line);
            String identity = q.path("identity").asText();
            LocalMskIam.Check c;
            if (q.has("operation")) {
                c = iam.check(identity, AclOperation.fromString(q.path("operation").asText()),
                    ResourceType.fromString(q.path("resource_type").asText()), q.path("name").asText());
            } else {
                c = iam.checkAction(identity, q.path("action").asText(), q.path("resource").asText());
            }
            ObjectNode r = mapper.createObjectNode();
            r.put("allowed", c.allowed());
            r.put("action", c.action());
            r.put("resource", c.arn());
            r.put("reason", c.reason());
            System.out.println(mapper.writeValueAsString(r));
        }
        System.out.flush();
    }

    private static String randomKeyChars(int n) {
        StringBuilder sb = new StringBuilder(n);
        for (int i = 0; i < n; i++) {
            sb.append(KEY_CHARS.charAt(RANDOM.nextInt(KEY_CHARS.length())));
        }
        return sb.toString();
    }

    private static String randomBase64(int bytes) {
        byte[] b = new byte[bytes];
        RANDOM.nextBytes(b);
        return Base64.getEncoder().encodeToString(b);
    }
}
