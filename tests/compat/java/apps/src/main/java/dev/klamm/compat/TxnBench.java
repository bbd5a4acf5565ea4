package dev.klamm.compat;

import java.util.Arrays;
import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The transactional workload of scripts/bench (issue 10): one Java
 * transactional producer runs TXNS transactions of RECORDS_PER_TXN records
 * of RECORD_BYTES bytes, spread round-robin over PARTITIONS partitions of
 * TOPIC, timing each commitTransaction() (which flushes the transaction's
 * records, then ends it). Prints one line:
 * {@code TXN-BENCH records_s=R commit_p50_ms=A commit_p99_ms=B commit_max_ms=C}.
 *
 * <p>Args: BOOTSTRAP TOPIC PARTITIONS RECORDS_PER_TXN TXNS RECORD_BYTES TRANSACTIONAL_ID
 */
final class TxnBench {
    private TxnBench() {}

    static void main(String[] args) {
        String bootstrap = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        int perTxn = Integer.parseInt(args[3]);
        int txns = Integer.parseInt(args[4]);
        int recordBytes = Integer.parseInt(args[5]);
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, args[6]);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, 64 * 1024);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        byte[] value = new byte[recordBytes];
        Arrays.fill(value, (byte) 'x');
        long[] commitNs = new long[txns];
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            long start = System.nanoTime();
            int next = 0;
            for (int t = 0; t < txns; t++) {
                producer.beginTransaction();
                for (int i = 0; i < perTxn; i++) {
                    producer.send(new ProducerRecord<>(topic, next++ % partitions, null, value));
                }
                long c0 = System.nanoTime();
                producer.commitTransaction();
                commitNs[t] = System.nanoTime() - c0;
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            Arrays.sort(commitNs);
            Apps.say(String.format(java.util.Locale.ROOT,
                    "TXN-BENCH records_s=%.1f commit_p50_ms=%.3f commit_p99_ms=%.3f commit_max_ms=%.3f",
                    (double) perTxn * txns / seconds, commitNs[txns / 2] / 1e6,
                    commitNs[Math.min(txns - 1, (int) Math.ceil(txns * 0.99) - 1)] / 1e6, commitNs[txns - 1] / 1e6));
        }
    }
}
