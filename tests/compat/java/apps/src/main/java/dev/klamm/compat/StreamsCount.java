package dev.klamm.compat;

import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;

/**
 * A Kafka Streams KTable: counts the records of each key of IN and writes
 * every update of the count to OUT (the record cache is off, so each input
 * record yields exactly one output record). Under exactly_once_v2 the
 * committed OUT holds, for each key, exactly 1, 2, ..., n in order, however
 * often the broker or the application restarts: a duplicate or a gap is an
 * exactly-once failure. The table's changelog is a compacted topic, so a
 * restarted application restores the counts from it.
 *
 * <p>Args: BOOTSTRAP APPLICATION_ID IN OUT STATE_DIR GUARANTEE
 * (exactly_once_v2 | at_least_once) [SESSION_TIMEOUT_MS] (the consumer's
 * session timeout, for tests that kill an instance). Prints "STATE X" on each state
 * change; stops when stdin closes.
 */
final class StreamsCount {
    private StreamsCount() {}

    static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String appId = args[1];
        String in = args[2];
        String out = args[3];
        String stateDir = args[4];
        String guarantee = args[5];

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(in, Consumed.with(Serdes.String(), Serdes.String()))
                .groupByKey()
                .count(Materialized.as("counts"))
                .toStream()
                .mapValues(v -> Long.toString(v))
                .to(out, Produced.with(Serdes.String(), Serdes.String()));

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        props.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        if (args.length > 6) {
            props.put(StreamsConfig.consumerPrefix("session.timeout.ms"), args[6]);
            props.put(StreamsConfig.consumerPrefix("heartbeat.interval.ms"), "1000");
        }

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        streams.setStateListener((now, before) -> Apps.say("STATE " + now));
        streams.setUncaughtExceptionHandler(e -> {
            Apps.say("THREAD-ERROR " + e);
            return StreamThreadExceptionResponse.REPLACE_THREAD;
        });
        CountDownLatch done = new CountDownLatch(1);
        Runnable stop = () -> {
            streams.close(Duration.ofSeconds(30));
            done.countDown();
        };
        Runtime.getRuntime().addShutdownHook(new Thread(stop));
        Apps.exitWhenStdinCloses(() -> {
            stop.run();
            System.exit(0);
        });
        streams.start();
        done.await();
    }
}
