package topicsync.localkafka;

import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.ListTopicsOptions;

/**
 * Waits until a broker answers admin requests: {@code Probe <bootstrap> <timeoutMs> [pid]}.
 * Exit 0 when it answers, 1 on timeout, 2 if the broker process died meanwhile. One JVM for the
 * whole wait, so polling costs no repeated JVM start-up.
 */
public final class Probe {
    private Probe() {
    }

    public static void main(String[] args) throws InterruptedException {
        String bootstrap = args[0];
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Long.parseLong(args[1]));
        Long pid = args.length > 2 ? Long.valueOf(args[2]) : null;
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, "200");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        String last = "no attempt";
        try (Admin admin = Admin.create(props)) {
            while (System.nanoTime() < deadline) {
                if (pid != null && ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true)) {
                    System.err.println("broker process " + pid + " exited");
                    System.exit(2);
                }
                try {
                    admin.describeCluster(new DescribeClusterOptions().timeoutMs(2000)).nodes().get();
                    admin.listTopics(new ListTopicsOptions().timeoutMs(2000)).names().get();
                    System.exit(0);
                } catch (Exception e) {
                    last = String.valueOf(e.getCause() != null ? e.getCause() : e);
                    Thread.sleep(100);
                }
            }
        }
        System.err.println("broker at " + bootstrap + " did not answer in time: " + last);
        System.exit(1);
    }
}
