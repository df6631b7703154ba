import java.lang.ref.WeakReference;

/**
 * A heap with a known shape for checking dominators and retained sizes by hand:
 *
 *   Shape.HOLDER -> a;  a -> b, c;  b -> d;  c -> d;  d -> e;  e -> w;  Shape.WEAK ~> w (weak)
 *
 * so idom(b) = idom(c) = idom(d) = a, idom(e) = d, idom(w) = e (the weak referent does not count).
 * Each Node carries a byte[] of a distinct length. It also keeps exactly COUNTED instances of
 * Shape$Counted alive, for checking instance counts.
 * Usage: java Shape OUT.hprof
 */
public final class Shape {
    static final int COUNTED = 1234;

    static final class Node {
        Node left;
        Node right;
        final byte[] payload;

        Node(int size) {
            payload = new byte[size];
        }
    }

    static final class Counted {
        final int index;

        Counted(int index) {
            this.index = index;
        }
    }

    static Node HOLDER;
    static WeakReference<Node> WEAK;
    static Counted[] ALL_COUNTED;

    public static void main(String[] args) throws Exception {
        Node a = new Node(100);
        Node b = new Node(200);
        Node c = new Node(300);
        Node d = new Node(400);
        Node e = new Node(500);
        Node w = new Node(600);
        a.left = b;
        a.right = c;
        b.left = d;
        c.left = d;
        d.left = e;
        e.right = w;
        HOLDER = a;
        WEAK = new WeakReference<>(w);
        ALL_COUNTED = new Counted[COUNTED];
        for (int i = 0; i < COUNTED; i++) {
            ALL_COUNTED[i] = new Counted(i);
        }
        a = b = c = d = e = w = null;
        Dump.heap(args[0]);
    }
}
