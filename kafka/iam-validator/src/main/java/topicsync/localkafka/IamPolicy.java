package topicsync.localkafka;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The part of AWS IAM policy evaluation the local broker needs, for identity-based policies:
 * an explicit Deny wins, then any Allow, else the request is implicitly denied.
 *
 * <p>Implemented: {@code Effect}; {@code Action} / {@code NotAction} and {@code Resource} /
 * {@code NotResource}, each a string or a list; the wildcards {@code *} and {@code ?} in actions
 * (case-insensitive) and resources (case-sensitive, matched per ARN component, the resource part
 * across '/' too). Not implemented: every {@code Condition} key and policy variables
 * ({@code ${...}}). A statement using them is kept but marked: as an Allow it never allows, as a
 * Deny it always applies (the safe reading: the emulator never allows what MSK might deny).
 */
final class IamPolicy {
    enum Effect { ALLOW, DENY }

    private static final Set<String> DOCUMENT_KEYS = Set.of("Version", "Id", "Statement");
    private static final Set<String> STATEMENT_KEYS =
        Set.of("Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition");

    private IamPolicy() {
    }

    /** One statement. {@code unimplemented} says why the emulator cannot evaluate it fully (or null). */
    record Statement(String label, Effect effect, List<String> actions, boolean notAction,
                     List<String> resources, boolean notResource, String unimplemented) {
        boolean matchesAction(String action) {
            boolean any = false;
            for (String pattern : actions) {
                if (globMatch(pattern.toLowerCase(Locale.ROOT), action.toLowerCase(Locale.ROOT))) {
                    any = true;
                    break;
                }
            }
            return notAction != any;
        }

        boolean matchesResource(String arn) {
            boolean any = false;
            for (String pattern : resources) {
                if (arnMatch(pattern, arn)) {
                    any = true;
                    break;
                }
            }
            return notResource != any;
        }

        boolean matches(String action, String arn) {
            return matchesAction(action) && matchesResource(arn);
        }
    }

    /** The outcome of evaluating one action on one resource. */
    record Decision(boolean allowed, String reason) {
    }

    /** Parses one policy document (index counts from 1, for messages). */
    static List<Statement> parse(String where, JsonNode doc) {
        if (doc == null || !doc.isObject()) {
            throw new IllegalArgumentException(where + ": a policy document must be a JSON object");
        }
        for (Iterator<String> it = doc.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!DOCUMENT_KEYS.contains(key)) {
                throw new IllegalArgumentException(where + ": unknown policy element \"" + key + "\"");
            }
        }
        String version = doc.path("Version").asText("2008-10-17");
        JsonNode statements = doc.get("Statement");
        if (statements == null) {
            throw new IllegalArgumentException(where + ": no Statement");
        }
        List<JsonNode> list = new ArrayList<>();
        if (statements.isArray()) {
            statements.forEach(list::add);
        } else {
            list.add(statements);
        }
        List<Statement> parsed = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            parsed.add(parseStatement(where + " statement " + (i + 1), list.get(i), version));
        }
        return parsed;
    }

    private static Statement parseStatement(String where, JsonNode s, String version) {
        if (!s.isObject()) {
            throw new IllegalArgumentException(where + ": a statement must be a JSON object");
        }
        for (Iterator<String> it = s.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if ("Principal".equals(key) || "NotPrincipal".equals(key)) {
                throw new IllegalArgumentException(where + ": identity policies have no " + key);
            }
            if (!STATEMENT_KEYS.contains(key)) {
                throw new IllegalArgumentException(where + ": unknown statement element \"" + key + "\"");
            }
        }
        String label = s.hasNonNull("Sid") ? where + " (Sid " + s.get("Sid").asText() + ")" : where;
        String effectText = s.path("Effect").asText("");
        Effect effect = switch (effectText) {
            case "Allow" -> Effect.ALLOW;
            case "Deny" -> Effect.DENY;
            default -> throw new IllegalArgumentException(where + ": Effect must be Allow or Deny, not \"" + effectText + "\"");
        };
        boolean notAction = exactlyOne(where, s, "Action", "NotAction");
        List<String> actions = strings(where, s.get(notAction ? "NotAction" : "Action"), notAction ? "NotAction" : "Action");
        boolean notResource = exactlyOne(where, s, "Resource", "NotResource");
        List<String> resources =
            strings(where, s.get(notResource ? "NotResource" : "Resource"), notResource ? "NotResource" : "Resource");

        String unimplemented = null;
        JsonNode condition = s.get("Condition");
        if (condition != null && !(condition.isObject() && condition.isEmpty())) {
            if (!condition.isObject()) {
                throw new IllegalArgumentException(where + ": Condition must be a JSON object");
            }
            List<String> operators = new ArrayList<>();
            condition.fieldNames().forEachRemaining(operators::add);
            unimplemented = "Condition " + operators + " is not implemented by the local emulator";
        } else if ("2012-10-17".equals(version)) {
            for (String r : resources) {
                if (r.contains("${")) {
                    unimplemented = "policy variable in " + r + " is not implemented by the local emulator";
                    break;
                }
            }
        }
        return new Statement(label, effect, List.copyOf(actions), notAction, List.copyOf(resources), notResource,
            unimplemented);
    }

    private static boolean exactlyOne(String where, JsonNode s, String plain, String negated) {
        boolean hasPlain = s.has(plain);
        boolean hasNegated = s.has(negated);
        if (hasPlain == hasNegated) {
            throw new IllegalArgumentException(where + ": needs exactly one of " + plain + " and " + negated);
        }
        return hasNegated;
    }

    private static List<String> strings(String where, JsonNode node, String name) {
        List<String> out = new ArrayList<>();
        if (node.isTextual()) {
            out.add(node.asText());
        } else if (node.isArray() && !node.isEmpty()) {
            for (JsonNode item : node) {
                if (!item.isTextual()) {
                    throw new IllegalArgumentException(where + ": " + name + " entries must be strings, got " + item);
                }
                out.add(item.asText());
            }
        } else {
            throw new IllegalArgumentException(where + ": " + name + " must be a string or a non-empty list of strings");
        }
        for (String value : out) {
            if (value.isEmpty()) {
                throw new IllegalArgumentException(where + ": empty string in " + name);
            }
        }
        return out;
    }

    /** IAM's decision for {@code action} on {@code arn} under all of an identity's statements. */
    static Decision evaluate(List<Statement> statements, String action, String arn) {
        Statement conditionalAllow = null;
        Statement allow = null;
        for (Statement s : statements) {
            if (!s.matches(action, arn)) {
                continue;
            }
            if (s.effect() == Effect.DENY) {
                String why = "explicit Deny in " + s.label();
                if (s.unimplemented() != null) {
                    why += " (" + s.unimplemented() + "; a Deny with it is applied as if it matched)";
                }
                return new Decision(false, why);
            }
            if (s.unimplemented() == null) {
                allow = allow == null ? s : allow;
            } else if (conditionalAllow == null) {
                conditionalAllow = s;
            }
        }
        if (allow != null) {
            return new Decision(true, "allowed by " + allow.label());
        }
        if (conditionalAllow != null) {
            return new Decision(false, "the only matching Allow, " + conditionalAllow.label() + ", never allows: "
                + conditionalAllow.unimplemented());
        }
        return new Decision(false, "no Allow statement matches (implicit deny)");
    }

    /** IAM resource matching: "*" matches anything; otherwise each of the six ARN components
     * (arn:partition:service:region:account:resource) is matched on its own with * and ?. */
    static boolean arnMatch(String pattern, String arn) {
        if ("*".equals(pattern)) {
            return true;
        }
        String[] p = pattern.split(":", 6);
        String[] a = arn.split(":", 6);
        if (p.length != a.length) {
            return false;
        }
        for (int i = 0; i < p.length; i++) {
            if (!globMatch(p[i], a[i])) {
                return false;
            }
        }
        return true;
    }

    /** Glob with '*' (any run, also empty) and '?' (exactly one character). */
    static boolean globMatch(String pattern, String text) {
        int p = 0;
        int t = 0;
        int star = -1;
        int mark = 0;
        while (t < text.length()) {
            if (p < pattern.length() && (pattern.charAt(p) == '?' || pattern.charAt(p) == text.charAt(t))) {
                p++;
                t++;
            } else if (p < pattern.length() && pattern.charAt(p) == '*') {
                star = p++;
                mark = t;
            } else if (star >= 0) {
                p = star + 1;
                t = ++mark;
            } else {
                return false;
            }
        }
        while (p < pattern.length() && pattern.charAt(p) == '*') {
            p++;
        }
        return p == pattern.length();
    }
}
