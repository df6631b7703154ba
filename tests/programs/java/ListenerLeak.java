import java.lang.ref.Reference;
import java.util.ArrayList;
import java.util.List;

/**
 * A listener-registry leak: widgets register a listener on a long-lived event bus and are
 * "closed" without unregistering it, so the bus keeps every widget (and its buffer) alive.
 * The bus lives in a local variable of main, so its GC root is a Java stack frame.
 * Usage: java ListenerLeak OUT.hprof[.gz] WIDGETS
 */
public final class ListenerLeak {
    interface Listener {
        void onEvent(String event);
    }

    static final class EventBus {
        private final List<Listener> listeners = new ArrayList<>();

        void register(Listener listener) {
            listeners.add(listener);
        }
    }

    static final class Widget {
        final int[] pixels = new int[250];
        int clicks;

        final class ClickListener implements Listener {
            @Override
            public void onEvent(String event) {
                clicks++;
            }
        }

        void open(EventBus bus) {
            bus.register(new ClickListener());
        }
    }

    public static void main(String[] args) throws Exception {
        int widgets = Integer.parseInt(args[1]);
        EventBus bus = new EventBus();
        for (int i = 0; i < widgets; i++) {
            new Widget().open(bus);
        }
        Dump.heap(args[0]);
        Reference.reachabilityFence(bus);
    }
}
