import com.sun.management.HotSpotDiagnosticMXBean;
import java.lang.management.ManagementFactory;

/**
 * Benchmark heap for bench/hprof_heap.sh: millions of small objects (no huge arrays), shaped
 * like a service with a cache that grew too much. Usage: java BenchHeap OUT.hprof MILLIONS
 *
 * Per million "records": 1 M Record instances (id, hits, next, tags), 0.25 M int[3] tags and
 * one String name per 1000 records; records hang in linked lists off 4096 buckets of a static
 * cache, and one bucket in 16 is also listed in a second index (shared ownership).
 */
final class BenchHeap {
    static final class Record {
        final long id;
        int hits;
        Record next;
        int[] tags;

        Record(long id, Record next) {
            this.id = id;
            this.next = next;
        }
    }

    static final class Bucket {
        Record head;
        String name;
        int size;
    }

    static Bucket[] CACHE;
    static Bucket[] INDEX;

    public static void main(String[] args) throws Exception {
        long records = Long.parseLong(args[1]) * 1_000_000L;
        Bucket[] cache = new Bucket[4096];
        for (int b = 0; b < cache.length; b++) {
            cache[b] = new Bucket();
        }
        for (long i = 0; i < records; i++) {
            Bucket bucket = cache[(int) (i & 4095)];
            Record record = new Record(i, bucket.head);
            if ((i & 3) == 0) {
                record.tags = new int[] {(int) i, (int) (i >> 1), 7};
            }
            if (i % 1000 == 0) {
                bucket.name = "bucket-" + i;
            }
            bucket.head = record;
            bucket.size++;
        }
        Bucket[] index = new Bucket[cache.length / 16];
        for (int b = 0; b < index.length; b++) {
            index[b] = cache[b * 16];
        }
        CACHE = cache;
        INDEX = index;
        HotSpotDiagnosticMXBean bean = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
        bean.dumpHeap(args[0], true);
    }
}
