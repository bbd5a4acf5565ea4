package dev.klamm.compat;

import java.util.Arrays;

/**
 * Test applications for klamm's compatibility suite, each a real user of a
 * client library: {@code streams-count} (Kafka Streams) and
 * {@code spring-txn} (Spring Kafka), and scripts/bench's transactional
 * workload {@code txn-bench}. The pytest files start them with
 * {@code compat.java_app(...)}, read the lines they print on stdout and
 * check what they wrote with independent clients. Each passes against
 * Apache Kafka as well as against klamm.
 */
public final class Apps {
    private Apps() {}

    public static void main(String[] args) throws Exception {
        if (args.length == 0) {
            System.err.println("usage: Apps streams-count|spring-txn|txn-bench ARGS...");
            System.exit(2);
        }
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        switch (args[0]) {
            case "streams-count" -> StreamsCount.main(rest);
            case "spring-txn" -> SpringTxn.main(rest);
            case "txn-bench" -> TxnBench.main(rest);
            default -> {
                System.err.println("unknown app " + args[0]);
                System.exit(2);
            }
        }
    }

    /** Prints one line for the test and flushes it at once. */
    static void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    /** Runs {@code onEof} when the test closes our stdin (or it dies). */
    static void exitWhenStdinCloses(Runnable onEof) {
        Thread t = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // the test writes nothing; any byte is ignored
                }
            } catch (Exception ignored) {
                // closed
            }
            onEof.run();
        }, "stdin-watch");
        t.setDaemon(true);
        t.start();
    }
}
