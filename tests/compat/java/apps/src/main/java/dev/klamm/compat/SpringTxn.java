package dev.klamm.compat;

import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.springframework.context.annotation.AnnotationConfigApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.annotation.EnableKafka;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.config.ConcurrentKafkaListenerContainerFactory;
import org.springframework.kafka.core.DefaultKafkaConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.listener.DeadLetterPublishingRecoverer;
import org.springframework.kafka.listener.DefaultAfterRollbackProcessor;
import org.springframework.kafka.transaction.KafkaTransactionManager;
import org.springframework.util.backoff.FixedBackOff;

/**
 * Spring Kafka's transactional programming model, as the tutorials teach
 * it: {@code KafkaTemplate.executeInTransaction} that commits and one that
 * rolls back, then a {@code @KafkaListener} whose container runs each
 * record in a {@code KafkaTransactionManager} transaction (consume,
 * produce, commit the offset atomically). A record whose value starts with
 * "fail" makes the listener throw after it has sent its output: the
 * transaction rolls back, the record is retried once, then the
 * after-rollback processor publishes it to the dead-letter topic and
 * commits its offset.
 *
 * <p>Args: BOOTSTRAP IN OUT DLT GROUP TXN_ID_PREFIX EXPECTED_INPUTS.
 * Prints TEMPLATE-COMMITTED, TEMPLATE-ROLLED-BACK, ATTEMPT value (each
 * listener call) and LISTENER-DONE once the group's committed offsets
 * cover EXPECTED_INPUTS records of IN; exits 0 then, 1 after 90 s.
 */
final class SpringTxn {
    private SpringTxn() {}

    static String prop(String name) {
        return System.getProperty("klamm." + name);
    }

    static void main(String[] args) throws Exception {
        String[] names = {"bootstrap", "in", "out", "dlt", "group", "prefix", "expected"};
        for (int i = 0; i < names.length; i++) {
            System.setProperty("klamm." + names[i], args[i]);
        }
        long expected = Long.parseLong(prop("expected"));

        try (AnnotationConfigApplicationContext ctx = new AnnotationConfigApplicationContext(Config.class)) {
            @SuppressWarnings("unchecked")
            KafkaTemplate<String, String> template = ctx.getBean(KafkaTemplate.class);
            template.executeInTransaction(t -> {
                t.send(prop("out"), "k", "template-commit-1");
                t.send(prop("out"), "k", "template-commit-2");
                return null;
            });
            Apps.say("TEMPLATE-COMMITTED");
            try {
                template.executeInTransaction(t -> {
                    t.send(prop("out"), "k", "template-rollback");
                    t.flush();
                    throw new IllegalStateException("roll back");
                });
            } catch (IllegalStateException e) {
                Apps.say("TEMPLATE-ROLLED-BACK");
            }
            ctx.getBean(Config.class).listenerReady = true;
            waitForCommittedOffsets(expected);
            Apps.say("LISTENER-DONE");
        }
        System.exit(0);
    }

    /** Waits until the group's committed offsets on IN sum to {@code expected}. */
    static void waitForCommittedOffsets(long expected) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, prop("bootstrap"));
        Instant deadline = Instant.now().plusSeconds(90);
        try (Admin admin = Admin.create(p)) {
            while (true) {
                Map<TopicPartition, OffsetAndMetadata> committed =
                        admin.listConsumerGroupOffsets(prop("group")).partitionsToOffsetAndMetadata().get();
                long sum = committed.entrySet().stream()
                        .filter(e -> e.getKey().topic().equals(prop("in")) && e.getValue() != null)
                        .mapToLong(e -> e.getValue().offset())
                        .sum();
                if (sum >= expected) {
                    return;
                }
                if (Instant.now().isAfter(deadline)) {
                    Apps.say("TIMEOUT committed " + sum + " of " + expected);
                    System.exit(1);
                }
                Thread.sleep(200);
            }
        }
    }

    @Configuration
    @EnableKafka
    public static class Config {
        volatile boolean listenerReady;

        @Bean
        public DefaultKafkaProducerFactory<String, String> producerFactory() {
            Map<String, Object> props = new HashMap<>();
            props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, prop("bootstrap"));
            props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
            props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
            DefaultKafkaProducerFactory<String, String> pf = new DefaultKafkaProducerFactory<>(props);
            pf.setTransactionIdPrefix(prop("prefix"));
            return pf;
        }

        @Bean
        public KafkaTemplate<String, String> kafkaTemplate(DefaultKafkaProducerFactory<String, String> pf) {
            return new KafkaTemplate<>(pf);
        }

        @Bean
        public KafkaTransactionManager<String, String> kafkaTransactionManager(
                DefaultKafkaProducerFactory<String, String> pf) {
            return new KafkaTransactionManager<>(pf);
        }

        @Bean
        public ConcurrentKafkaListenerContainerFactory<String, String> kafkaListenerContainerFactory(
                KafkaTemplate<String, String> template, KafkaTransactionManager<String, String> tm) {
            Map<String, Object> props = new HashMap<>();
            props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, prop("bootstrap"));
            props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
            props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
            props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            props.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
            ConcurrentKafkaListenerContainerFactory<String, String> factory =
                    new ConcurrentKafkaListenerContainerFactory<>();
            factory.setConsumerFactory(new DefaultKafkaConsumerFactory<>(props));
            factory.getContainerProperties().setKafkaAwareTransactionManager(tm);
            DeadLetterPublishingRecoverer recoverer = new DeadLetterPublishingRecoverer(
                    template, (record, ex) -> new TopicPartition(prop("dlt"), -1));
            factory.setAfterRollbackProcessor(
                    new DefaultAfterRollbackProcessor<>(recoverer, new FixedBackOff(0L, 1L), template, true));
            return factory;
        }

        @Bean
        public Listener listener(KafkaTemplate<String, String> template) {
            return new Listener(template);
        }
    }

    public static class Listener {
        private final KafkaTemplate<String, String> template;

        Listener(KafkaTemplate<String, String> template) {
            this.template = template;
        }

        @KafkaListener(id = "klamm-txn-listener",
                topics = "#{systemProperties['klamm.in']}",
                groupId = "#{systemProperties['klamm.group']}")
        public void listen(ConsumerRecord<String, String> record) {
            Apps.say("ATTEMPT " + record.value());
            template.send(prop("out"), record.key(), "processed-" + record.value());
            if (record.value().startsWith("fail")) {
                // The output reaches the log before the rollback aborts it.
                template.flush();
                throw new IllegalStateException("listener fails on " + record.value());
            }
        }
    }
}
