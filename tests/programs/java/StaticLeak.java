import java.util.ArrayList;
import java.util.List;

/**
 * A static-collection leak: every request's session is cached in a static list and never evicted.
 * Usage: java StaticLeak OUT.hprof SESSIONS
 */
public final class StaticLeak {
    static final List<Session> SESSIONS = new ArrayList<>();

    static final class Session {
        final long id;
        final byte[] state = new byte[1000];

        Session(long id) {
            this.id = id;
        }
    }

    public static void main(String[] args) throws Exception {
        int sessions = Integer.parseInt(args[1]);
        for (int i = 0; i < sessions; i++) {
            SESSIONS.add(new Session(i));
        }
        Dump.heap(args[0]);
    }
}
