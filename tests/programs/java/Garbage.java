import java.util.ArrayList;
import java.util.List;

/**
 * A heap holding garbage: a static list keeps KEPT objects alive, and DROPPED objects that each
 * point at one of the kept ones are made and forgotten just before a non-live dump (no GC
 * first). The dropped objects must be left out of every number, and must not take the kept
 * objects away from the list that dominates them. The list also keeps STRING_COPIES copies of
 * a Latin-1 and of a UTF-16 string value (each copy with its own value array), and the garbage
 * holds copies of a third value, which must not be reported as duplicated.
 * Usage: java Garbage OUT.hprof KEPT DROPPED
 */
public final class Garbage {
    static final List<Kept> KEPT = new ArrayList<>();
    static final List<String> STRINGS = new ArrayList<>();
    static final int STRING_COPIES = 250;

    static final class Kept {
        final byte[] payload = new byte[2000];
    }

    static final class Dropped {
        final Kept points;
        final byte[] junk = new byte[500];
        final String text = new String("dropped-copy".toCharArray());

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
        for (int i = 0; i < STRING_COPIES; i++) {
            STRINGS.add(new String("kept-latin1-value".toCharArray()));
            STRINGS.add(new String("kept-\u03c0\u20ac-value".toCharArray()));
        }
        System.gc();
        for (int i = 0; i < dropped; i++) {
            new Dropped(KEPT.get(i % kept));
        }
        Dump.heapWithGarbage(args[0]);
    }
}
