package topicsync.localkafka;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;
import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerExtensionsValidatorCallback;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Broker-side validator for Amazon MSK IAM OAUTHBEARER tokens, for the local test broker only.
 *
 * <p>A token is base64url(SigV4 presigned URL) as built by aws-msk-iam-sasl-signer. We rebuild the
 * canonical request exactly as botocore's SigV4QueryAuth signs it and check the signature against
 * the test credentials in the JAAS option {@code credentialsFile} (access key id, secret and the
 * session token issued with them: a token signed with temporary credentials must carry exactly that
 * X-Amz-Security-Token). The principal is the identity the key was issued to ({@code User:<name>}),
 * and, like MSK, authentication succeeds only if that identity's IAM policies (JAAS option
 * {@code policiesFile}) allow {@code kafka-cluster:Connect} on the cluster ARN. The token lives
 * until X-Amz-Date + X-Amz-Expires.
 */
public final class MskIamValidatorCallbackHandler implements AuthenticateCallbackHandler {
    private static final Logger LOG = LoggerFactory.getLogger(MskIamValidatorCallbackHandler.class);
    private static final DateTimeFormatter AMZ_DATE = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'");
    // botocore SigV4QueryAuth (not the S3 variant) hashes the empty body: sha256("").
    private static final String EMPTY_SHA256 =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    private static final long MAX_CLOCK_SKEW_SECONDS = 300;
    private static final long MAX_EXPIRES_SECONDS = 7 * 24 * 3600;

    /** Test credentials issued by scripts/local-kafka (LocalIamTool issue). */
    private record Issued(String identity, String secret, String sessionToken) {
    }

    private Map<String, Issued> issued = Map.of();
    private String expectedRegion;
    private LocalMskIam iam;

    @Override
    public void configure(Map<String, ?> configs, String saslMechanism, List<AppConfigurationEntry> jaasConfigEntries) {
        if (!"OAUTHBEARER".equals(saslMechanism)) {
            throw new IllegalArgumentException("Unexpected SASL mechanism: " + saslMechanism);
        }
        Map<String, ?> options = jaasConfigEntries.get(0).getOptions();
        Object file = options.get("credentialsFile");
        if (file == null) {
            throw new IllegalArgumentException("JAAS option credentialsFile is required");
        }
        Object policies = options.get("policiesFile");
        if (policies == null) {
            throw new IllegalArgumentException("JAAS option policiesFile is required");
        }
        iam = LocalMskIam.load(new File(policies.toString()));
        try {
            JsonNode root = new ObjectMapper().readTree(new File(file.toString()));
            Map<String, Issued> loaded = new HashMap<>();
            for (Map.Entry<String, JsonNode> e : root.path("identities").properties()) {
                JsonNode id = e.getValue();
                loaded.put(id.path("access_key_id").asText(), new Issued(e.getKey(),
                    id.path("secret_access_key").asText(), id.path("session_token").asText(null)));
            }
            if (loaded.isEmpty()) {
                throw new IllegalArgumentException("no identities in " + file);
            }
            issued = Map.copyOf(loaded);
            expectedRegion = root.path("region").asText(null);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read credentials file " + file, e);
        }
    }

    @Override
    public void handle(Callback[] callbacks) throws IOException, UnsupportedCallbackException {
        for (Callback callback : callbacks) {
            if (callback instanceof OAuthBearerValidatorCallback v) {
                try {
                    v.token(validate(v.tokenValue(), Instant.now()));
                } catch (InvalidTokenException e) {
                    LOG.warn("Rejected MSK IAM token: {}", e.getMessage());
                    v.error("invalid_token", null, null);
                } catch (RuntimeException e) {
                    // Never let a malformed token escape as an exception: the client must get an
                    // authentication failure, not a dropped connection it may retry forever.
                    LOG.warn("Rejected malformed MSK IAM token", e);
                    v.error("invalid_token", null, null);
                }
            } else if (callback instanceof OAuthBearerExtensionsValidatorCallback) {
                // MSK IAM uses no SASL extensions; leaving them unvalidated drops them.
                continue;
            } else {
                throw new UnsupportedCallbackException(callback);
            }
        }
    }

    @Override
    public void close() {
    }

    static final class InvalidTokenException extends Exception {
        InvalidTokenException(String message) {
            super(message);
        }
    }

    OAuthBearerToken validate(String tokenValue, Instant now) throws InvalidTokenException {
        String url;
        try {
            url = new String(Base64.getUrlDecoder().decode(tokenValue), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
            throw new InvalidTokenException("not base64url");
        }
        URI uri = URI.create(url);
        String host = uri.getHost();
        String rawQuery = uri.getRawQuery();
        if (!"https".equals(uri.getScheme()) || host == null || rawQuery == null) {
            throw new InvalidTokenException("not a presigned https URL");
        }
        if (uri.getPort() != -1 || !(uri.getRawPath().isEmpty() || "/".equals(uri.getRawPath()))) {
            throw new InvalidTokenException("unexpected port or path");
        }

        // Raw (still percent-encoded) pairs: botocore signs the encoded form as it appears in the URL.
        List<String[]> signedPairs = new ArrayList<>();
        Map<String, String> params = new HashMap<>();
        for (String pair : rawQuery.split("&")) {
            int eq = pair.indexOf('=');
            String key = eq < 0 ? pair : pair.substring(0, eq);
            String value = eq < 0 ? "" : pair.substring(eq + 1);
            String decodedKey = URLDecoder.decode(key, StandardCharsets.UTF_8);
            if (params.put(decodedKey, URLDecoder.decode(value, StandardCharsets.UTF_8)) != null) {
                throw new InvalidTokenException("repeated parameter " + decodedKey);
            }
            // The signer appends User-Agent after signing.
            if (!"X-Amz-Signature".equals(decodedKey) && !"User-Agent".equals(decodedKey)) {
                signedPairs.add(new String[] {key, value});
            }
        }

        String action = required(params, "Action");
        if (!"kafka-cluster:Connect".equals(action)) {
            throw new InvalidTokenException("Action is " + action + ", not kafka-cluster:Connect");
        }
        String algorithm = required(params, "X-Amz-Algorithm");
        if (!"AWS4-HMAC-SHA256".equals(algorithm)) {
            throw new InvalidTokenException("unsupported algorithm " + algorithm);
        }
        if (!"host".equals(required(params, "X-Amz-SignedHeaders"))) {
            throw new InvalidTokenException("SignedHeaders must be host");
        }
        String[] scope = required(params, "X-Amz-Credential").split("/", -1);
        if (scope.length != 5 || !"aws4_request".equals(scope[4])) {
            throw new InvalidTokenException("malformed credential scope");
        }
        String accessKeyId = scope[0];
        String scopeDate = scope[1];
        String region = scope[2];
        String service = scope[3];
        if (!"kafka-cluster".equals(service)) {
            throw new InvalidTokenException("service is " + service + ", not kafka-cluster");
        }
        if (expectedRegion != null && !expectedRegion.equals(region)) {
            throw new InvalidTokenException("region " + region + " is not " + expectedRegion);
        }
        if (!host.equals("kafka." + region + ".amazonaws.com")) {
            throw new InvalidTokenException("host " + host + " does not match region " + region);
        }

        String amzDate = required(params, "X-Amz-Date");
        Instant signedAt;
        long expiresSeconds;
        try {
            signedAt = LocalDateTime.parse(amzDate, AMZ_DATE).toInstant(ZoneOffset.UTC);
            expiresSeconds = Long.parseLong(required(params, "X-Amz-Expires"));
        } catch (DateTimeParseException | NumberFormatException e) {
            throw new InvalidTokenException("malformed X-Amz-Date or X-Amz-Expires");
        }
        if (!amzDate.startsWith(scopeDate)) {
            throw new InvalidTokenException("credential scope date does not match X-Amz-Date");
        }
        if (expiresSeconds <= 0 || expiresSeconds > MAX_EXPIRES_SECONDS) {
            throw new InvalidTokenException("X-Amz-Expires out of range");
        }
        if (signedAt.isAfter(now.plusSeconds(MAX_CLOCK_SKEW_SECONDS))) {
            throw new InvalidTokenException("X-Amz-Date is in the future");
        }
        Instant expiresAt = signedAt.plusSeconds(expiresSeconds);
        if (!expiresAt.isAfter(now)) {
            throw new InvalidTokenException("token expired at " + expiresAt);
        }

        Issued creds = issued.get(accessKeyId);
        if (creds == null) {
            throw new InvalidTokenException("unknown access key id " + accessKeyId);
        }
        String secret = creds.secret();
        signedPairs.sort((a, b) -> {
            int c = a[0].compareTo(b[0]);
            return c != 0 ? c : a[1].compareTo(b[1]);
        });
        StringBuilder canonicalQuery = new StringBuilder();
        for (String[] pair : signedPairs) {
            if (canonicalQuery.length() > 0) {
                canonicalQuery.append('&');
            }
            canonicalQuery.append(pair[0]).append('=').append(pair[1]);
        }
        String canonicalRequest = String.join("\n",
            "GET", "/", canonicalQuery.toString(), "host:" + host, "", "host", EMPTY_SHA256);
        String credentialScope = scopeDate + "/" + region + "/" + service + "/aws4_request";
        String stringToSign = String.join("\n",
            "AWS4-HMAC-SHA256", amzDate, credentialScope, hex(sha256(canonicalRequest)));
        byte[] key = hmac(("AWS4" + secret).getBytes(StandardCharsets.UTF_8), scopeDate);
        key = hmac(key, region);
        key = hmac(key, service);
        key = hmac(key, "aws4_request");
        String expected = hex(hmac(key, stringToSign));
        String given = required(params, "X-Amz-Signature");
        if (!MessageDigest.isEqual(expected.getBytes(StandardCharsets.US_ASCII),
                given.getBytes(StandardCharsets.US_ASCII))) {
            throw new InvalidTokenException("signature mismatch for " + accessKeyId);
        }
        // Like STS: temporary keys are only valid together with the session token issued with them.
        String sessionToken = params.get("X-Amz-Security-Token");
        if (creds.sessionToken() != null) {
            if (sessionToken == null || sessionToken.isEmpty()) {
                throw new InvalidTokenException("no session token (X-Amz-Security-Token) for temporary key "
                    + accessKeyId + " of identity " + creds.identity());
            }
            if (!MessageDigest.isEqual(creds.sessionToken().getBytes(StandardCharsets.UTF_8),
                    sessionToken.getBytes(StandardCharsets.UTF_8))) {
                throw new InvalidTokenException("session token is not the one issued with " + accessKeyId
                    + " (identity " + creds.identity() + ")");
            }
        } else if (sessionToken != null) {
            throw new InvalidTokenException("session token given for long-term key " + accessKeyId);
        }
        LocalMskIam.Check connect = iam.checkAction(creds.identity(), LocalMskIam.CONNECT, iam.clusterArn);
        if (!connect.allowed()) {
            LOG.warn(LocalMskIam.denialLine(creds.identity(), connect, "SASL authentication"));
            throw new InvalidTokenException("identity " + creds.identity() + " may not " + LocalMskIam.CONNECT
                + " to " + iam.clusterArn + " (" + connect.reason() + ")");
        }
        return new Token(tokenValue, creds.identity(), signedAt.toEpochMilli(), expiresAt.toEpochMilli());
    }

    private static String required(Map<String, String> params, String name) throws InvalidTokenException {
        String value = params.get(name);
        if (value == null || value.isEmpty()) {
            throw new InvalidTokenException("missing " + name);
        }
        return value;
    }

    private static byte[] sha256(String data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    private static byte[] hmac(byte[] key, String data) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String hex(byte[] bytes) {
        return HexFormat.of().formatHex(bytes);
    }

    private record Token(String value, String principalName, long startMs, long lifetimeMs)
            implements OAuthBearerToken {
        @Override
        public Set<String> scope() {
            return Collections.emptySet();
        }

        @Override
        public Long startTimeMs() {
            return startMs;
        }
    }
}
