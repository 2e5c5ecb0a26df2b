import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * A Java producer as guardstream's users run one (kafka-clients, the jar the test stack
 * already fetches): every line of each file becomes one record with a null key and a header,
 * in batches compressed with the given codec. Exits non-zero if any send fails.
 *
 * <p>Usage: {@code JsonLinesProducer BOOTSTRAP TOPIC CODEC=FILE [CODEC=FILE ...]}
 */
public final class JsonLinesProducer {
    private JsonLinesProducer() {}

    public static void main(String[] args) throws Exception {
        for (int i = 2; i < args.length; i++) {
            String[] codecAndFile = args[i].split("=", 2);
            send(args[0], args[1], codecAndFile[0], Path.of(codecAndFile[1]));
        }
    }

    private static void send(String bootstrap, String topic, String codec, Path file)
            throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        // Enough linger for every line to share a batch: compression works per batch.
        props.put(ProducerConfig.LINGER_MS_CONFIG, "100");
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        byte[] producerName = ("kafka-clients/" + codec).getBytes(StandardCharsets.UTF_8);
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                ProducerRecord<byte[], byte[]> record =
                        new ProducerRecord<>(topic, null, line.getBytes(StandardCharsets.UTF_8));
                record.headers().add("producer", producerName);
                sent.add(producer.send(record));
            }
            producer.flush();
            for (Future<RecordMetadata> result : sent) {
                result.get(); // rethrows the send's failure
            }
        }
    }
}
