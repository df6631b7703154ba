import java.util.ArrayList;
import java.util.List;

/**
 * A heap holding garbage: a static list keeps KEPT objects alive, and DROPPED objects that each
 * point at one of the kept ones are made and forgotten just before a non-live dump (no GC
 * first). The dropped objects must be left out of every number, and must not take the kept
 * objects away from the list that dominates them.
 * Usage: java Garbage OUT.hprof KEPT DROPPED
 */
public final class Garbage {
    static final List<Kept> KEPT = new ArrayList<>();

    static final class Kept {
        final byte[] payload = new byte[2000];
    }

    static final class Dropped {
        final Kept points;
        final byte[] junk = new byte[500];

        Dropped(Kept points) {
            this.points = points;
        }
    }

    public static void main(String[] args) throws Exception {
        int kept = Integer.parseInt(args[1]);
        int dropped = Integer.parseInt(args[2]);
        for (int i = 0; i < kept; i++) {
            KEPT.add(new Kept());
        }
        System.gc();
        for (int i = 0; i < dropped; i++) {
            new Dropped(KEPT.get(i % kept));
        }
        Dump.heapWithGarbage(args[0]);
    }
}
